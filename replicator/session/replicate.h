// replicate(): what `imgcast replicate` does on the root (the first host of the list). It opens
// the source once, stages its own copy, starts an agent on every other host, hands out the plan,
// reads each chunk once and feeds the tree, and collects every node's outcome.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "replicator/plan/schedule.h"
#include "replicator/protocol/auth.h"
#include "replicator/session/context_factory.h"
#include "replicator/session/report.h"
#include "transport/kind.h"

namespace imgcast::replicator {

// What the root knows of the transfer while it runs, for a progress display.
struct ProgressSnapshot {
  std::uint64_t image_bytes = 0;
  double elapsed_seconds = 0;                 // since the first chunk was read
  std::vector<std::uint64_t> bytes_verified;  // per rank
  std::vector<std::string> hosts;             // per rank
  int done = 0;                               // ranks with a placed copy
  int failed = 0;
  // Before data moves (else empty): what the setup waits for the agents to do ("join", ...),
  // how many of them have, and the seconds since the command started.
  std::string setup_step;
  int setup_reached = 0;
  double setup_seconds = 0;
};

struct ReplicateOptions {
  std::filesystem::path source;
  // Several sources (or one directory): when set, `source` is ignored. One directory: DST is a
  // copy of it; several: DST is a directory holding each by its last component (root_source.h).
  std::vector<std::filesystem::path> sources;
  std::string destination;              // may hold %r / %h
  std::vector<std::string> hosts;       // hosts[0] is this host, the root
  std::string rsh = "ssh";              // "local" runs agents on this machine
  std::string agent_program;            // imgcast's path on the other hosts
  std::vector<std::string> agent_args;  // global options put before `agent` (e.g. log level)
  // How the agents start. Empty: one `rsh HOST 'command'` per host. Otherwise one launcher
  // process starts them all (the argv before imgcast's path, e.g. {"srun", "--overlap", ...});
  // each agent then finds its rank by its own host name in the host list, and the job secret
  // travels in the launcher's environment (kSecretVariable), never in argv.
  std::vector<std::string> agent_step;
  // Set when the agents are started by someone else (imgcast hook: the launcher runs one on
  // every node): nothing is launched, and `publish` is told where to join and the secret line.
  // hosts[rank] may then be empty for a host whose name is not known before it joins.
  std::function<void(const std::string& control_address, const std::string& secret_line)> publish;
  std::optional<std::uint32_t> chunk_bytes;  // nullopt: chosen by the schedule model
  std::optional<std::string> topology;       // nullopt: chosen by the schedule model
  LinkModel link;                            // what the model assumes of each link
  // Time the root's link during setup and plan with what it measures (link_meter.h); false
  // (--link-mbit given) keeps link.beta_bytes_per_second as it is.
  bool measure_link = true;
  transport::Kind transport = transport::Kind::kTcp;
  // --transport auto chose RDMA: a link whose RDMA setup fails runs on TCP (docs/rdma.md).
  bool transport_fallback = false;
  mode_t mode = 0644;
  // Replicate even to nodes whose copy is already this image (the node-local cache).
  bool force = false;
  // --cache: every node's copy goes into its node cache (cache/node_cache.h) at `cache_dir`,
  // which evicts to fit `cache_budget` (0: none but the file system's); `destination`, when not
  // empty, is then placed from the entry. The root serves the transfer from its own entry when
  // it has one, without reading the source. One image file only.
  struct CacheOptions {
    std::filesystem::path dir;  // may hold %r / %h, like `destination` (several nodes on one host)
    std::uint64_t budget = 0;
  };
  std::optional<CacheOptions> cache;
  // As AgentOptions::keep_cache_pin, for the root's own entry. Optional.
  std::function<void(int entry_fd)> keep_cache_pin;
  // Allow a destination directory reached through a symlink (refused otherwise: exit 4).
  bool follow_symlinks = false;
  // Up to this many nodes (never the root) may fail and the run still succeeds (exit 0).
  int allow_fail = 0;
  // The job key; nullopt: a fresh random one (IMGCAST_KEY_FILE lets a site give its own).
  std::optional<JobKey> key;
  std::chrono::milliseconds connect_timeout{30000};
  std::chrono::milliseconds stall_timeout{60000};
  // Listen on every address (--bind any) instead of hosts[0]'s (listen_address.h).
  bool bind_any = false;
  // Called about four times a second during the transfer (optional).
  std::function<void(const ProgressSnapshot&)> on_progress;
};

// The environment variable a step launcher forwards the job secret line in.
inline constexpr const char* kSecretVariable = "IMGCAST_JOB_SECRET";

// Throws InputError / SecurityError for bad input before anything is written or launched, and
// TransferError when the root itself fails; otherwise returns the report (whose exit_code()
// says whether every node verified).
Report replicate(const ReplicateOptions& options, const ContextFactory& make_context);

}  // namespace imgcast::replicator
