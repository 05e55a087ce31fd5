// Which batch allocation `imgcast replicate` runs in, and its hosts: Slurm, PBS/Torque or LSF.
// Each scheduler's variables are read the way its own tools read them; the first host is where
// the job script runs (the root).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli/launch/environment.h"

namespace imgcast::cli::launch {

enum class Scheduler { kSlurm, kPbs, kLsf };
const char* to_string(Scheduler scheduler) noexcept;

struct Allocation {
  Scheduler scheduler = Scheduler::kSlurm;
  std::string job_id;              // may be empty (PBS/LSF without their job id variable)
  std::vector<std::string> hosts;  // in the scheduler's order, each once
  std::string origin;              // the variable or file the hosts came from, for messages
};

// nullopt when no scheduler's variables are set. Slurm (SLURM_JOB_ID with SLURM_JOB_NODELIST or
// SLURM_NODELIST) wins over PBS (PBS_NODEFILE) over LSF (LSB_DJOB_HOSTFILE, else LSB_MCPU_HOSTS).
// Throws InputError naming the variable when it is present but malformed or names no host.
std::optional<Allocation> detect_allocation(const Environment& env);

// PBS_NODEFILE / LSB_DJOB_HOSTFILE: one host per line per slot; folded to each host once, in
// order of first appearance.
std::vector<std::string> read_slot_file(const std::filesystem::path& path, std::string_view origin);
// LSB_MCPU_HOSTS: "host1 4 host2 4" (a host, then its slot count).
std::vector<std::string> parse_lsf_mcpu_hosts(std::string_view text);
// Removes repeats, keeping the first of each.
std::vector<std::string> fold_duplicates(std::vector<std::string> hosts);

}  // namespace imgcast::cli::launch
