#include "cli/launch/node_identity.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include "cli/launch/hostlist.h"
#include "replicator/errors.h"

namespace imgcast::cli::launch {

namespace {

using replicator::InputError;
constexpr long kMaxNodes = 1 << 20;

// Slurm and PMIx are recognised alike: both this node's index and the job's name are set. The
// rest of the identity is each launcher's own.
std::optional<NodeIdentity> started_by(const Environment& env, const char* launcher,
                                       std::string_view index_variable, long index_limit,
                                       std::string_view job_variable) {
  const auto index = integer_variable(env, index_variable, index_limit);
  const auto job = env(job_variable);
  if (!index || !job)
    return std::nullopt;
  NodeIdentity id;
  id.launcher = launcher;
  id.node = static_cast<int>(*index);
  id.job = *job;
  return id;
}

std::optional<NodeIdentity> from_slurm(const Environment& env) {
  std::optional<NodeIdentity> found =
      started_by(env, "slurm", "SLURM_NODEID", kMaxNodes, "SLURM_JOB_ID");
  if (!found)
    return std::nullopt;
  NodeIdentity& id = *found;
  id.step = id.job + "." + env("SLURM_STEP_ID").value_or("batch");
  std::optional<long> nodes = integer_variable(env, "SLURM_STEP_NUM_NODES", kMaxNodes + 1);
  std::optional<std::string> list = env("SLURM_STEP_NODELIST");
  if (!nodes) {
    nodes = integer_variable(env, "SLURM_NNODES", kMaxNodes + 1);
    list = env("SLURM_JOB_NODELIST");
  }
  if (!nodes) {
    throw InputError(
        "SLURM_NODEID is set but neither SLURM_STEP_NUM_NODES nor SLURM_NNODES is: "
        "pass --nodes N");
  }
  id.nodes = static_cast<int>(*nodes);
  if (list) {
    std::vector<std::string> hosts = expand_hostlist(*list, "SLURM_STEP_NODELIST");
    // Only a list that matches the node count and puts us at our index is trusted as names.
    if (static_cast<long>(hosts.size()) == *nodes && id.node < static_cast<int>(hosts.size()) &&
        hosts[id.node] == this_node_name(env)) {
      id.hosts = std::move(hosts);
    }
  }
  return found;
}

std::optional<NodeIdentity> from_open_mpi(const Environment& env) {
  const auto rank = integer_variable(env, "OMPI_COMM_WORLD_RANK", INT_MAX);
  const auto size = integer_variable(env, "OMPI_COMM_WORLD_SIZE", INT_MAX);
  if (!rank || !size)
    return std::nullopt;
  const long per_node = integer_variable(env, "OMPI_COMM_WORLD_LOCAL_SIZE", INT_MAX).value_or(1);
  if (per_node < 1 || *size % per_node != 0) {
    throw InputError(fmt::format(
        "OMPI_COMM_WORLD_SIZE {} is not a multiple of OMPI_COMM_WORLD_LOCAL_SIZE {}: launch the "
        "hook with the same number of processes on every node (mpirun --map-by ppr:1:node)",
        *size, per_node));
  }
  NodeIdentity id;
  id.launcher = "open-mpi";
  id.node = static_cast<int>(*rank / per_node);
  id.nodes = static_cast<int>(*size / per_node);
  id.job = env("OMPI_MCA_ess_base_jobid").value_or(env("PMIX_NAMESPACE").value_or(""));
  id.step = id.job;
  return id;
}

std::optional<NodeIdentity> from_pmix(const Environment& env, const PmixQuery* pmix) {
  std::optional<NodeIdentity> found =
      started_by(env, "pmix", "PMIX_RANK", INT_MAX, "PMIX_NAMESPACE");
  if (!found)
    return std::nullopt;
  NodeIdentity& id = *found;
  id.nodes = 0;  // PMIx keeps the job size in its server, not the environment: --nodes
  id.step = id.job;
  if (pmix != nullptr && in_pmix_job(env)) {
    const PmixJob job = (*pmix)();
    std::vector<std::string> nodes = pmix_process_nodes(job);
    const auto self = std::find(nodes.begin(), nodes.end(), job.hostname);
    if (self == nodes.end()) {
      throw InputError(fmt::format(
          "PMIx PMIX_NODE_LIST of job {} is '{}', which does not hold this host '{}': pass "
          "--rank and --nodes",
          job.nspace, job.process_nodes, job.hostname));
    }
    id.node = static_cast<int>(self - nodes.begin());
    id.nodes = static_cast<int>(nodes.size());
    id.hosts = std::move(nodes);
  }
  return found;
}

}  // namespace

std::string this_node_name(const Environment& env) {
  if (auto name = env("SLURMD_NODENAME"))
    return *name;
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0)
    return "localhost";
  return buffer;
}

NodeIdentity detect_node_identity(const Environment& env, const IdentityOverrides& overrides,
                                  const PmixQuery* pmix) {
  std::optional<NodeIdentity> found = from_slurm(env);
  if (!found)
    found = from_open_mpi(env);
  if (!found)  // --nodes given: the server need not be asked
    found = from_pmix(env, overrides.nodes ? nullptr : pmix);
  if (!found) {
    if (!overrides.node || !overrides.nodes || !overrides.job) {
      throw InputError(
          "not started by a launcher (no SLURM_NODEID, OMPI_COMM_WORLD_RANK or PMIX_RANK): run "
          "it under srun or mpirun, or pass --rank, --nodes and --job-id");
    }
    found = NodeIdentity{};
    found->launcher = "options";
  }
  NodeIdentity id = std::move(*found);
  if (overrides.node)
    id.node = *overrides.node;
  if (overrides.nodes) {
    if (*overrides.nodes != id.nodes)
      id.hosts.clear();
    id.nodes = *overrides.nodes;
  }
  if (overrides.job) {
    id.job = *overrides.job;
    id.step = *overrides.job;
  }
  if (overrides.step)
    id.step = *overrides.step;
  if (id.nodes < 1) {
    throw InputError(
        fmt::format("the {} launcher does not say how many nodes take part: pass "
                    "--nodes N",
                    id.launcher));
  }
  if (id.node < 0 || id.node >= id.nodes) {
    throw InputError(
        fmt::format("this node's index {} is not below the node count {} (from {}): "
                    "check --rank and --nodes",
                    id.node, id.nodes, id.launcher));
  }
  if (id.job.empty()) {
    throw InputError(
        fmt::format("the {} launcher gives no job id: pass --job-id ID (the same on "
                    "every node)",
                    id.launcher));
  }
  return id;
}

}  // namespace imgcast::cli::launch
