// How many file descriptors the root holds at once for a job, and the check that the process
// may open that many, made before any agent starts: at 2,000 nodes the default soft limit of
// 1,024 runs out mid-setup, and every node fails with errors that do not say why.
#pragma once

#include <cstddef>

#include "replicator/plan/topology.h"

namespace imgcast::replicator {

struct DescriptorBudget {
  std::size_t base = 0;             // standard streams, listeners, epoll, source, staged copy
  std::size_t control = 0;          // one control connection per agent
  std::size_t launcher = 0;         // the launcher's pipe while a child starts (transient)
  std::size_t data_children = 0;    // the root's own data connections, every tree
  std::size_t adoption_margin = 0;  // orphans the root may adopt, and strays being refused
  std::size_t total() const noexcept {
    return base + control + launcher + data_children + adoption_margin;
  }
};

// `per_host_launcher`: --rsh starts one process per host (AgentLauncher::launch), as opposed to
// one launcher for the whole step (srun, mpirun) or a published rendezvous.
DescriptorBudget descriptor_budget(const Topology& topology, bool per_host_launcher);

// Raises the soft RLIMIT_NOFILE to what `budget` needs when the hard limit allows it. Throws
// InputError with one line naming both figures when even the hard limit is too small: nothing
// has started, and only whoever sets the job's limits (ulimit -Hn, limits.conf, the batch
// system) can fix it.
void ensure_descriptors(const DescriptorBudget& budget, std::size_t nodes);

}  // namespace imgcast::replicator
