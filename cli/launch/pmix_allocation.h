// A PMIx job's nodes, as its PMIx server tells them: the allocation `imgcast replicate` uses when
// it runs as a PMIx client (started by Open MPI's mpirun, PRRTE's prterun, `srun --mpi=pmix`, or
// any launcher that embeds a PMIx server) and no other scheduler's variables are set.
//
// The query (pmix_query.cc, or the stub when libpmix was not found at configure time) is the
// only part that talks to the server; the rest is pure, so the tests are tables.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cli/launch/environment.h"

namespace imgcast::cli::launch {

// What the server says about this process's job (its namespace at PMIX_RANK_WILDCARD).
struct PmixJob {
  std::string nspace;
  std::uint32_t rank = 0;     // this process's rank in the job
  std::uint32_t size = 1;     // PMIX_JOB_SIZE: processes in the job
  std::string hostname;       // PMIX_HOSTNAME of this process, else gethostname()
  std::string node_list;      // as the server gave it: comma-separated, maybe bracketed
  std::string node_list_key;  // "PMIX_ALLOCATED_NODELIST" or "PMIX_NODE_LIST"
  std::string process_nodes;  // PMIX_NODE_LIST: the nodes that run the job's processes
};

// The server query; detect_allocation takes it as an argument so tests can give a table.
using PmixQuery = std::function<PmixJob()>;

// True when this process was started as a PMIx client: PMIX_NAMESPACE and one of the
// PMIX_SERVER_URI* variables are set. Without them nothing connects anywhere, so detection is
// free and never waits for a server outside a PMIx job.
bool in_pmix_job(const Environment& env);

// Whether this build can talk to a PMIx server (libpmix was found at configure time).
bool pmix_built_in() noexcept;

// Connects to this process's PMIx server (PMIx_Init), reads the job's node list, rank, size and
// this process's host name, and disconnects (PMIx_Finalize). Prefers PMIX_ALLOCATED_NODELIST
// (every node of the allocation) and falls back to PMIX_NODE_LIST (the nodes hosting this job's
// processes: Open MPI 4.1's mpirun and Slurm's mpi/pmix give only this one).
// REQUIRES: in_pmix_job(process_environment()).
// Throws InputError naming PMIx and what to pass when the server does not answer, gives no
// node list, or support is not built in.
PmixJob query_pmix_job();

// The job's hosts in the server's order, each once, with this process's host moved first (it
// reads the source). Throws InputError naming the key when the list is malformed or empty, or
// when it does not hold this host.
std::vector<std::string> pmix_hosts(const PmixJob& job);

// The nodes that run the job's processes (PMIX_NODE_LIST) in the server's order, each once:
// the hook's node list under a PMIx launcher. Throws InputError naming the key when the list is
// malformed or empty.
std::vector<std::string> pmix_process_nodes(const PmixJob& job);

}  // namespace imgcast::cli::launch
