#include "cli/launch/pmix_allocation.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>

#include "cli/launch/allocation.h"
#include "cli/launch/hostlist.h"
#include "replicator/errors.h"

namespace imgcast::cli::launch {

namespace {

// Every server exports the URI under the names of the protocol versions it speaks (PMIx 4.2
// under Open MPI 4.1 and Slurm 22.05 sets URI2, URI21, URI3, URI4 and URI41), and a client of
// any of them reads one: any one is enough.
constexpr std::array<std::string_view, 6> kServerUriVariables = {
    "PMIX_SERVER_URI41", "PMIX_SERVER_URI4", "PMIX_SERVER_URI3",
    "PMIX_SERVER_URI21", "PMIX_SERVER_URI2", "PMIX_SERVER_URI"};

}  // namespace

bool in_pmix_job(const Environment& env) {
  if (!env("PMIX_NAMESPACE"))
    return false;
  return std::any_of(kServerUriVariables.begin(), kServerUriVariables.end(),
                     [&env](std::string_view name) { return env(name).has_value(); });
}

std::vector<std::string> pmix_hosts(const PmixJob& job) {
  const std::string origin = fmt::format("PMIx {} of job {}", job.node_list_key, job.nspace);
  // Both servers here hand the client a plain "h0,h1,h2"; the hostlist parser also takes the
  // bracketed "node[1-4]" that some resource managers register.
  std::vector<std::string> hosts = fold_duplicates(expand_hostlist(job.node_list, origin));
  const auto self = std::find(hosts.begin(), hosts.end(), job.hostname);
  if (self == hosts.end()) {
    throw replicator::InputError(fmt::format(
        "{} is '{}', which does not hold this host '{}': run imgcast on one of them, or pass "
        "--hosts (this host first)",
        origin, job.node_list, job.hostname));
  }
  std::rotate(hosts.begin(), self, self + 1);
  return hosts;
}

std::vector<std::string> pmix_process_nodes(const PmixJob& job) {
  return fold_duplicates(
      expand_hostlist(job.process_nodes, fmt::format("PMIx PMIX_NODE_LIST of job {}", job.nspace)));
}

}  // namespace imgcast::cli::launch
