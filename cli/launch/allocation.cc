#include "cli/launch/allocation.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>
#include <unordered_set>

#include "cli/launch/hostlist.h"
#include "cli/parse.h"
#include "replicator/errors.h"

namespace imgcast::cli::launch {

namespace {

using replicator::InputError;

// The same host-name checks as --hosts (no shell metacharacters, no empty names).
std::vector<std::string> checked(const std::vector<std::string>& hosts, std::string_view origin) {
  std::string joined;
  for (const auto& h : hosts) {
    if (h.find(',') != std::string::npos) {
      throw InputError(fmt::format("{} names the host '{}', which holds a comma", origin, h));
    }
    joined += (joined.empty() ? "" : ",") + h;
  }
  if (joined.empty()) {
    throw InputError(fmt::format("{} names no host: is the allocation empty?", origin));
  }
  try {
    return parse_host_list(joined);
  } catch (const InputError& error) {
    throw InputError(fmt::format("{}: {}", origin, error.what()));
  }
}

// PBS and LSF name their hosts the same way: a variable holding the path of a slot file, and
// an optional job id variable beside it.
std::optional<Allocation> from_slot_file(const Environment& env, Scheduler scheduler,
                                         const char* file_variable, const char* job_variable) {
  const auto path = env(file_variable);
  if (!path)
    return std::nullopt;
  Allocation a;
  a.scheduler = scheduler;
  a.job_id = env(job_variable).value_or("");
  a.origin = file_variable;
  a.hosts = read_slot_file(*path, a.origin);
  return a;
}

}  // namespace

const char* to_string(Scheduler scheduler) noexcept {
  switch (scheduler) {
    case Scheduler::kSlurm:
      return "slurm";
    case Scheduler::kPbs:
      return "pbs";
    case Scheduler::kLsf:
      return "lsf";
    case Scheduler::kPmix:
      return "pmix";
  }
  return "?";
}

std::vector<std::string> fold_duplicates(std::vector<std::string> hosts) {
  std::unordered_set<std::string> seen;
  std::vector<std::string> out;
  for (auto& h : hosts) {
    if (seen.insert(h).second)
      out.push_back(std::move(h));
  }
  return out;
}

std::vector<std::string> read_slot_file(const std::filesystem::path& path,
                                        std::string_view origin) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw InputError(fmt::format("{} {} is a directory, not a host file", origin, path.string()));
  }
  std::ifstream in(path);
  if (!in) {
    throw InputError(fmt::format("{} {} cannot be read: is this the node the job started on?",
                                 origin, path.string()));
  }
  std::vector<std::string> hosts;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string host;
    if (words >> host && host.front() != '#')
      hosts.push_back(host);
  }
  return checked(fold_duplicates(std::move(hosts)), fmt::format("{} {}", origin, path.string()));
}

std::vector<std::string> parse_lsf_mcpu_hosts(std::string_view text) {
  std::istringstream words{std::string(text)};
  std::vector<std::string> hosts;
  std::string host;
  std::string slots;
  while (words >> host) {
    if (!(words >> slots) || slots.find_first_not_of("0123456789") != std::string::npos) {
      throw InputError(fmt::format(
          "LSB_MCPU_HOSTS '{}' is not 'host slots host slots ...': host '{}' has no slot count",
          text, host));
    }
    hosts.push_back(host);
  }
  return checked(fold_duplicates(std::move(hosts)), "LSB_MCPU_HOSTS");
}

std::optional<Allocation> detect_allocation(const Environment& env, const PmixQuery& pmix) {
  if (const auto job = env("SLURM_JOB_ID")) {
    Allocation a;
    a.scheduler = Scheduler::kSlurm;
    a.job_id = *job;
    a.origin = "SLURM_JOB_NODELIST";
    std::optional<std::string> list = env("SLURM_JOB_NODELIST");
    if (!list) {
      a.origin = "SLURM_NODELIST";
      list = env("SLURM_NODELIST");
    }
    if (!list) {
      throw InputError(
          "SLURM_JOB_ID is set but SLURM_JOB_NODELIST is not: run imgcast inside the job (sbatch "
          "or salloc), or pass --hosts");
    }
    a.hosts = checked(fold_duplicates(expand_hostlist(*list, a.origin)), a.origin);
    return a;
  }
  if (auto a = from_slot_file(env, Scheduler::kPbs, "PBS_NODEFILE", "PBS_JOBID"))
    return a;
  if (auto a = from_slot_file(env, Scheduler::kLsf, "LSB_DJOB_HOSTFILE", "LSB_JOBID"))
    return a;
  if (const auto mcpu = env("LSB_MCPU_HOSTS")) {
    Allocation a;
    a.scheduler = Scheduler::kLsf;
    a.job_id = env("LSB_JOBID").value_or("");
    a.origin = "LSB_MCPU_HOSTS";
    a.hosts = parse_lsf_mcpu_hosts(*mcpu);
    return a;
  }
  if (in_pmix_job(env)) {
    const PmixJob job = pmix();
    Allocation a;
    a.scheduler = Scheduler::kPmix;
    a.job_id = job.nspace;
    a.origin = "PMIx " + job.node_list_key;
    a.hosts = checked(pmix_hosts(job), a.origin);
    a.rank = job.rank;
    a.processes = job.size;
    return a;
  }
  return std::nullopt;
}

}  // namespace imgcast::cli::launch
