// DataNodeOptions: what a DataNode is told when the plan makes it (the session fills it in from
// the plan; the DataNode and its parts keep a copy for their lifetime).
#pragma once

#include <cstddef>
#include <cstdint>

#include "replicator/plan/topology.h"
#include "replicator/protocol/auth.h"

namespace imgcast::replicator {

struct DataNodeOptions {
  int rank = 0;
  const Topology* topology = nullptr;
  std::uint64_t image_bytes = 0;
  std::uint32_t chunk_bytes = 0;
  const JobKey* key = nullptr;
  JobId job{};
  std::size_t window = 8;  // writes in flight per child
  // The root: how far its reading thread may run ahead of the fastest child's completions (0:
  // an eighth of this machine's memory, so what is read ahead is still cached when it is sent),
  // and how many chunks it reads before the first child has connected.
  std::uint64_t read_ahead_bytes = 0;
  std::uint64_t read_ahead_before_children = 16;
};

}  // namespace imgcast::replicator
