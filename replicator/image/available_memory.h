// How much memory this process may still take: the least of the machine's MemAvailable and, for
// every memory cgroup above us (a Slurm job's and its step's, a container's), its limit less its
// usage. Scratch space in memory (StagedImage::create_in_memory) is sized against it: a memfd's
// pages count against the cgroup and, without swap, cannot be reclaimed, so the machine-wide
// figure alone would let a job step's limit OOM-kill the agent.
#pragma once

#include <cstdint>
#include <optional>

namespace imgcast::replicator {

// nullopt when the kernel says nothing of MemAvailable (/proc/meminfo unreadable).
std::optional<std::uint64_t> available_memory_bytes();

}  // namespace imgcast::replicator
