// imgcast hook SRC... DST [-- CMD ARGS...]: run by a launcher on every node of a job (srun
// --ntasks-per-node=1, mpirun --map-by ppr:1:node, a Slurm TaskProlog, the SPANK plugin). Each
// node learns its index and the node count from the launcher's variables; node 0 reads SRC and
// is the root; the nodes meet through a rendezvous file in a shared directory (no fixed port);
// the first task of each node stages, other tasks of that node wait for it; then CMD runs with
// IMGCAST_PATH set to the staged file (or tree). SRC... DST as for replicate: one image file,
// one directory, or several of them into the directory DST.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include "cli/cache_flags.h"
#include "cli/commands.h"
#include "cli/context_factory.h"
#include "cli/key_hygiene.h"
#include "cli/launch/node_claim.h"
#include "cli/launch/node_identity.h"
#include "cli/launch/rendezvous.h"
#include "cli/logging.h"
#include "cli/option_checks.h"
#include "cli/run_guard.h"
#include "replicator/session/agent.h"
#include "replicator/image/destination.h"
#include "replicator/session/replicate.h"
#include "transport/factory.h"

namespace imgcast::cli {

namespace {

namespace fs = std::filesystem;
using replicator::ExitCode;

struct HookArgs {
  // The positional words, words then command: SRC... DST, then CMD... when the command line has
  // a `--` (split by split_words(), from GlobalOptions::words_after_separator).
  std::vector<std::string> words;
  std::vector<std::filesystem::path> sources;
  std::string destination;
  std::vector<std::string> command;
  std::string rendezvous_dir;
  std::optional<int> rank;
  std::optional<int> nodes;
  std::optional<std::string> job_id;
  std::optional<std::string> step_id;
  std::string chunk_size = "auto";
  std::string topology = "auto";
  double link_mbit = 0;  // 0: measured during setup
  double hop_latency_us = 50;
  std::string transport = "auto";
  std::string mode = "0644";
  bool allow_setid = false;
  double timeout = 300;
  double stall_timeout = 60;
  bool force = false;
  int allow_fail = 0;
  bool follow_symlinks = false;
  CacheFlags cache;
};

// The node cache's entry this node's copy is (--cache), pinned: held open across the exec of
// CMD, so the entry stays in use while CMD (or anything that inherits it) runs, and no longer
// once they are gone (the kernel drops the flock with the last descriptor).
replicator::UniqueFd kept_pin;

void keep_pin(int entry_fd) {
  // F_DUPFD, not F_DUPFD_CLOEXEC: the duplicate must survive execvp(). It shares the flock.
  kept_pin.reset(::fcntl(entry_fd, F_DUPFD, 3));
}

// words = SRC... DST [CMD...]: the last `command_words` (-1: no `--`) are CMD.
void split_words(HookArgs& args, int command_words) {
  std::vector<std::string> paths = args.words;
  paths.insert(paths.end(), args.command.begin(), args.command.end());
  args.command.clear();
  if (command_words > 0 && static_cast<std::size_t>(command_words) <= paths.size()) {
    args.command.assign(paths.end() - command_words, paths.end());
    paths.resize(paths.size() - static_cast<std::size_t>(command_words));
  }
  if (paths.size() < 2) {
    throw replicator::InputError(
        "name the source and the destination: imgcast hook SRC... DST [-- CMD ARGS...]");
  }
  args.destination = paths.back();
  args.sources.assign(paths.begin(), paths.end() - 1);
  if (args.cache.cache && args.sources.size() > 1) {
    throw replicator::InputError("--cache takes one image file: imgcast hook SRC DST --cache");
  }
}

fs::path rendezvous_directory(const HookArgs& args, const launch::Environment& env) {
  if (!args.rendezvous_dir.empty())
    return args.rendezvous_dir;
  if (auto dir = env("IMGCAST_RENDEZVOUS_DIR"))
    return *dir;
  if (auto dir = env("SLURM_SUBMIT_DIR"))
    return *dir;
  return fs::current_path();
}

// Node 0: the root. Reads SRC once, stages its own copy, waits for every other node's agent.
int stage_as_root(const HookArgs& args, const GlobalOptions& global,
                  const launch::NodeIdentity& id, const std::string& host,
                  launch::Rendezvous& rendezvous) {
  replicator::ReplicateOptions options;
  if (args.sources.size() == 1) {
    options.source = args.sources.front();  // one file or one directory (root_source.h)
  } else {
    options.sources = args.sources;  // several: each by its last component inside DST
  }
  options.destination = args.destination;
  options.hosts = id.hosts;
  if (options.hosts.empty()) {
    options.hosts.assign(static_cast<std::size_t>(id.nodes), std::string());
    options.hosts[0] = host;
  }
  bool published = false;
  options.publish = [&rendezvous, &published](const std::string& control,
                                              const std::string& secret) {
    rendezvous.publish({control, secret});
    published = true;
  };
  apply_plan_options(args.topology, args.chunk_size, args.link_mbit, args.hop_latency_us,
                     options);
  options.transport = transport::choose_kind(args.transport);
  options.transport_fallback = args.transport == "auto";
  options.mode = parse_mode(args.mode, args.allow_setid);
  options.force = args.force;
  options.allow_fail = args.allow_fail;
  options.follow_symlinks = args.follow_symlinks;
  options.key = key_from_environment();
  options.connect_timeout = parse_seconds(args.timeout, "--timeout");
  options.bind_any = global.bind == "any";
  options.stall_timeout = parse_seconds(args.stall_timeout, "--stall-timeout");
  options.cache = cache_options(args.cache);
  if (options.cache) {
    options.keep_cache_pin = keep_pin;
  }
  std::optional<replicator::Report> result;
  try {
    result.emplace(replicator::replicate(options, context_factory()));
  } catch (const std::exception& error) {
    // Before the rendezvous the others cannot hear of it from us: tell them through the file.
    // (That file stays: the others may read it any time before their timeout.)
    if (published) {
      rendezvous.withdraw();
    } else {
      rendezvous.publish_failure(error.what());
    }
    throw;
  }
  rendezvous.withdraw();
  const replicator::Report& report = *result;
  if (!global.quiet)
    report.print(std::cout);
  return report_exit(report);
}

// Every other node: an agent of the root that node 0 published.
int stage_as_agent(const HookArgs& args, const GlobalOptions& global,
                   const launch::NodeIdentity& id, const std::string& host,
                   const launch::Rendezvous& rendezvous) {
  const auto timeout = parse_seconds(args.timeout, "--timeout");
  const launch::Invitation invitation = rendezvous.wait(timeout);
  replicator::AgentOptions options;
  options.control_address = invitation.control_address;
  options.rank = id.node;
  options.host = host;
  options.secret_line = invitation.secret_line;
  options.connect_timeout = timeout;
  options.bind_any = global.bind == "any";
  options.keep_cache_pin = keep_pin;  // used only when node 0 runs with --cache
  return static_cast<int>(replicator::run_agent(options, context_factory()));
}

int run_command(const std::vector<std::string>& command, const std::string& staged) {
  ::setenv("IMGCAST_PATH", staged.c_str(), 1);
  std::vector<char*> argv;
  for (const auto& word : command)
    argv.push_back(const_cast<char*>(word.c_str()));
  argv.push_back(nullptr);
  std::cout.flush();
  restore_core_limit();
  ::execvp(argv[0], argv.data());
  std::cerr << fmt::format("imgcast: error: cannot run {}: {}: check the command after --\n",
                           command.front(), std::strerror(errno));
  return static_cast<int>(ExitCode::kUsage);
}

}  // namespace

Run add_hook_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<HookArgs>();
  CLI::App* cmd = app.add_subcommand(
      "hook", "Run by the launcher on every node: stage SRC as DST once per node, then CMD");
  cmd->footer(
      "Node 0 (SLURM_NODEID / OMPI_COMM_WORLD_RANK ... = 0) reads SRC; the nodes meet through a "
      "file in a shared directory (--rendezvous, default $SLURM_SUBMIT_DIR or the working "
      "directory).\nExamples:\n"
      "  srun --ntasks-per-node=1 imgcast hook /lustre/app.sif /tmp/app.sif\n"
      "  srun imgcast hook /lustre/app.sif /tmp/app.sif -- apptainer exec /tmp/app.sif app\n"
      "  mpirun --map-by ppr:1:node imgcast hook /shared/app.sif /tmp/app.sif\n"
      "  srun imgcast hook /lustre/app.sif /lustre/data /tmp/job -- ./run.sh   (several: "
      "/tmp/job/app.sif, /tmp/job/data)");
  cmd->add_option("SRC... DST", args->words,
                  "The image file or directory to stage (read by node 0 only), or several, then "
                  "the node-local path of the copy (%r: node, %h: host)")
      ->required()
      ->expected(1, 1 << 20);
  // CLI11 fills a vector positional with one unbroken run of words: the run after the options
  // (`-- CMD ARGS...`) lands here, and split_words() rejoins them.
  cmd->add_option("CMD", args->command, "Command to run once the copy is in place (after --)");
  cmd->add_option("--rendezvous", args->rendezvous_dir,
                  "Directory every node shares, for the rendezvous file");
  cmd->add_option("--rank", args->rank, "This node's index (default: from the launcher)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--nodes", args->nodes, "How many nodes take part (default: from the launcher)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--job-id", args->job_id, "The job's id, the same on every node (default: "
                                            "from the launcher)");
  cmd->add_option("--step-id", args->step_id,
                  "The launch's id, the same on every node (default: the job id, or Slurm's "
                  "JOB.STEP)");
  cmd->add_option("--chunk-size", args->chunk_size, "Chunk size (4K..1G), or auto")
      ->capture_default_str()
      ->check(chunk_size_check());
  cmd->add_option("--topology", args->topology, "auto, binomial, chain, kary:K or twotree")
      ->capture_default_str();
  cmd->add_option("--link-mbit", args->link_mbit,
                  "Link bandwidth the auto plan assumes, Mbit/s (default: measured during setup)")
      ->check(CLI::Range(1.0, 1e7));
  cmd->add_option("--hop-latency-us", args->hop_latency_us, "Per-chunk hop cost, microseconds")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--transport", args->transport,
                  "tcp, ucx, verbs or auto (RDMA where it works; a link whose RDMA setup fails "
                  "runs on TCP)")
      ->capture_default_str()
      ->check(transport_check());
  cmd->add_option("--mode", args->mode, "File mode of every copy (octal)")
      ->capture_default_str()
      ->check(mode_check());
  cmd->add_flag("--allow-setid", args->allow_setid,
                "Let --mode set the setuid, setgid or sticky bit (refused otherwise)");
  cmd->add_flag("--force", args->force,
                "Send the image even to nodes whose copy is already this image (cached)");
  cmd->add_flag("--follow-symlinks", args->follow_symlinks,
                "Allow DST's directory to be reached through a symlink (refused otherwise)");
  cmd->add_option("--allow-fail", args->allow_fail,
                  "Up to K nodes (not node 0) may fail and node 0 still exits 0")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  add_cache_flags(cmd, args->cache,
                  "Stage SRC into every node's cache (kept across jobs) and DST from the entry; "
                  "the entry stays in use, never evicted, while CMD runs (node 0's flags count)");
  cmd->add_option("--timeout", args->timeout,
                  "Seconds for every node to arrive (the launcher may start them apart)")
      ->capture_default_str()
      ->check(seconds_check());
  cmd->add_option("--stall-timeout", args->stall_timeout,
                  "Seconds without progress before a node counts as failed")
      ->capture_default_str()
      ->check(seconds_check());

  return [args, &global]() {
    const launch::Environment env = launch::process_environment();
    const std::string host = launch::this_node_name(env);
    std::string staged;
    const int code = run_guarded([&] {
      split_words(*args, global.words_after_separator);
      const launch::PmixQuery pmix = launch::query_pmix_job;
      launch::NodeIdentity id = launch::detect_node_identity(
          env, launch::IdentityOverrides{args->rank, args->nodes, args->job_id, args->step_id},
          launch::pmix_built_in() ? &pmix : nullptr);
      setup_logging(host, id.node, global.level());
      id.job = launch::file_name_safe(id.job);
      id.step = launch::file_name_safe(id.step);
      staged = replicator::expand_destination(args->destination, id.node, host);
      const auto timeout = parse_seconds(args->timeout, "--timeout");
      // Refuses (exit 4) a lock or state file another user planted beside DST; "staged" counts
      // only while DST is still our own copy with our own cache record.
      launch::NodeClaim claim(staged, timeout);
      switch (claim.state(id.job, id.step)) {
        case launch::NodeState::kStaged:
          spdlog::info("{} is already staged on {} for job {}", staged, host, id.job);
          return 0;
        case launch::NodeState::kFailed:
          throw replicator::TransferError(fmt::format(
              "staging {} on {} failed in this step (another task of the node reported why)",
              staged, host));
        case launch::NodeState::kNothing:
          break;
      }
      launch::Rendezvous rendezvous(rendezvous_directory(*args, env),
                                    id.step + ":" + args->destination);
      int result = 0;
      try {
        result = id.node == 0 ? stage_as_root(*args, global, id, host, rendezvous)
                              : stage_as_agent(*args, global, id, host, rendezvous);
      } catch (...) {
        // The staging error is the one to report; a state that cannot be written as well only
        // costs the node's other tasks their --timeout.
        try {
          claim.record_failed(id.job, id.step);
        } catch (const std::exception& also) {
          spdlog::warn("{}", also.what());
        }
        throw;
      }
      if (result == 0) {
        // Node 0 knows it ran with --cache; an agent knows by the pin it was handed.
        claim.record_staged(id.job, args->cache.cache || kept_pin.valid());
      } else {
        claim.record_failed(id.job, id.step);
      }
      return result;
    });
    if (code != 0 || args->command.empty())
      return code;
    return run_command(args->command, staged);
  };
}

}  // namespace imgcast::cli
