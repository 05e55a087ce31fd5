// Who this process is inside a launch (srun, mpirun, a PMIx launcher, a Slurm TaskProlog):
// which node of how many, the node names when the launcher lists them, and the ids that make
// the hook's rendezvous and markers unique. Read from the launcher's own variables.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/launch/environment.h"
#include "cli/launch/pmix_allocation.h"

namespace imgcast::cli::launch {

struct NodeIdentity {
  int node = 0;                    // this node's index; node 0 reads the source
  int nodes = 1;                   // how many nodes take part
  std::vector<std::string> hosts;  // by node index when the launcher names them, else empty
  std::string job;                 // the job: a second hook call in the same job is a no-op
  std::string step;                // the launch: one rendezvous per step
  std::string launcher;            // "slurm", "open-mpi", "pmix" or "options"
};

// What the user passed instead (--rank, --nodes, --job-id); each wins over the environment.
struct IdentityOverrides {
  std::optional<int> node;
  std::optional<int> nodes;
  std::optional<std::string> job;
  std::optional<std::string> step;
};

// Slurm (SLURM_NODEID, SLURM_STEP_NUM_NODES, SLURM_STEP_NODELIST, SLURM_JOB_ID, SLURM_STEP_ID),
// Open MPI (OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_SIZE: node = rank / local size, which holds
// for --map-by ppr:K:node), PMIx (PMIX_RANK, PMIX_NAMESPACE), else the overrides alone. Under
// PMIx the environment holds no node count: with `pmix` (given when PMIx is built in) and no
// --nodes, the server's PMIX_NODE_LIST names the nodes, and this host's place in it is the node
// index (several tasks of a node share it); without it, --nodes is required and node = rank.
// Throws InputError saying what to pass when nothing identifies the node, or when the values
// disagree (node >= nodes).
NodeIdentity detect_node_identity(const Environment& env, const IdentityOverrides& overrides,
                                  const PmixQuery* pmix = nullptr);

// This node's name as the launcher knows it: SLURMD_NODENAME, else the host name.
std::string this_node_name(const Environment& env);

}  // namespace imgcast::cli::launch
