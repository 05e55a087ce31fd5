// Which batch allocation `imgcast replicate` runs in, and its hosts: Slurm, PBS/Torque, LSF or a
// PMIx job. Each scheduler's variables are read the way its own tools read them; the first host
// is where the job script runs (the root).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli/launch/environment.h"
#include "cli/launch/pmix_allocation.h"

namespace imgcast::cli::launch {

enum class Scheduler { kSlurm, kPbs, kLsf, kPmix };
const char* to_string(Scheduler scheduler) noexcept;

struct Allocation {
  Scheduler scheduler = Scheduler::kSlurm;
  std::string job_id;              // may be empty (PBS/LSF without their job id variable)
  std::vector<std::string> hosts;  // in the scheduler's order, each once
  std::string origin;              // the variable or file the hosts came from, for messages
  // This process's rank and the job's process count when the job has several processes (a
  // PMIx job started one per node); one job's replicate runs on rank 0 alone.
  std::uint32_t rank = 0;
  std::uint32_t processes = 1;
};

// nullopt when no scheduler's variables are set. Slurm (SLURM_JOB_ID with SLURM_JOB_NODELIST or
// SLURM_NODELIST) wins over PBS (PBS_NODEFILE) over LSF (LSB_DJOB_HOSTFILE, else LSB_MCPU_HOSTS)
// over PMIx (in_pmix_job: then `pmix` is asked, and only then). Slurm comes before PMIx because
// under `srun --mpi=pmix` Slurm's variables name the whole allocation, PMIx only the step.
// Throws InputError naming the variable when it is present but malformed or names no host.
std::optional<Allocation> detect_allocation(const Environment& env,
                                            const PmixQuery& pmix = query_pmix_job);

// PBS_NODEFILE / LSB_DJOB_HOSTFILE: one host per line per slot; folded to each host once, in
// order of first appearance.
std::vector<std::string> read_slot_file(const std::filesystem::path& path, std::string_view origin);
// LSB_MCPU_HOSTS: "host1 4 host2 4" (a host, then its slot count).
std::vector<std::string> parse_lsf_mcpu_hosts(std::string_view text);
// Removes repeats, keeping the first of each.
std::vector<std::string> fold_duplicates(std::vector<std::string> hosts);

}  // namespace imgcast::cli::launch
