#include "replicator/session/descriptor_budget.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "replicator/errors.h"
#include "replicator/log.h"

namespace imgcast::replicator {

namespace {

// Measured: 19 descriptors besides the agents' at 1,000 loopback nodes (a peak of 1,018); the
// rest is headroom for the resolver and a backend's own (UCX opens a few per context). Small
// enough that a 4-node job still runs under a limit of 64 (tests/e2e/swarm_test.cc).
constexpr std::size_t kBase = 32;
// Orphans re-parented onto the root. Strays need none: past the limit the listener pauses and
// retries (tcp_listener), so they slow admission down but fail nobody.
constexpr std::size_t kMargin = 16;

}  // namespace

DescriptorBudget descriptor_budget(const Topology& topology, bool per_host_launcher) {
  DescriptorBudget budget;
  budget.base = kBase;
  const int agents = std::max(topology.size() - 1, 0);
  budget.control = static_cast<std::size_t>(agents);
  // The pipe for a child's standard input is closed once the secret is written, and the child
  // is reaped by pid (no pidfd): two at a time, however many hosts.
  budget.launcher = per_host_launcher && agents > 0 ? 2 : 0;
  for (int tree = 0; tree < topology.trees(); ++tree) {
    budget.data_children += topology.children(topology.root(), tree).size();
  }
  budget.adoption_margin = kMargin;
  return budget;
}

void ensure_descriptors(const DescriptorBudget& budget, std::size_t nodes) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    log().warn("cannot read the descriptor limit ({}): going on without checking it",
               std::strerror(errno));
    return;
  }
  const std::size_t needed = budget.total();
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= needed) {
    return;
  }
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) {
    throw InputError(fmt::format(
        "a job of {} nodes needs about {} file descriptors on the root (one per agent, its data "
        "links and a margin) but the hard limit (ulimit -Hn) allows {}: raise it (limits.conf, "
        "the batch system's limits) or use fewer nodes",
        nodes, needed, limit.rlim_max));
  }
  // cli/ raised the soft limit to the hard one already; a library caller may not have.
  const rlim_t wanted = limit.rlim_max;
  limit.rlim_cur = wanted;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    throw InputError(
        fmt::format("a job of {} nodes needs about {} open files on the root, and "
                    "raising the soft limit to {} failed: {}",
                    nodes, needed, wanted, std::strerror(errno)));
  }
  log().info("raised the soft descriptor limit to {} for {} nodes (about {} needed)", wanted, nodes,
             needed);
}

}  // namespace imgcast::replicator
