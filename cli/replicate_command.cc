// imgcast replicate SRC... DST --hosts h1,h2,... | --hostfile F [--rsh CMD] ...
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <iostream>
#include <optional>
#include <sstream>

#include "cli/cache_flags.h"
#include "cli/commands.h"
#include "cli/context_factory.h"
#include "cli/launch/allocation.h"
#include "cli/logging.h"
#include "cli/option_checks.h"
#include "cli/progress_line.h"
#include "cli/result_output.h"
#include "cli/run_guard.h"
#include "cli/parse.h"
#include "replicator/session/replicate.h"
#include "transport/factory.h"

namespace imgcast::cli {

namespace {

struct ReplicateArgs {
  std::vector<std::string> paths;  // SRC... DST: the last is DST
  std::string hosts;
  std::string hostfile;
  std::string rsh = "ssh";
  std::string launcher = "auto";
  std::string chunk_size = "auto";
  std::string topology = "auto";
  double link_mbit = 0;  // 0: measured during setup
  double hop_latency_us = 50;
  std::string transport = "auto";
  std::string mode = "0644";
  bool allow_setid = false;
  std::string agent_path;
  double connect_timeout = 30;
  bool json = false;
  double stall_timeout = 60;
  bool force = false;
  int allow_fail = 0;
  bool follow_symlinks = false;
  CacheFlags cache;
};

// The hosts: --hosts / --hostfile, else the batch allocation this runs in.
std::vector<std::string> choose_hosts(const ReplicateArgs& args,
                                      std::optional<launch::Allocation>& allocation) {
  if (!args.hostfile.empty())
    return read_hostfile(args.hostfile);
  if (!args.hosts.empty())
    return parse_host_list(args.hosts);
  allocation = launch::detect_allocation(launch::process_environment());
  if (!allocation) {
    throw replicator::InputError(
        "no hosts: not inside a Slurm, PBS, LSF or PMIx allocation; pass --hosts h1,h2,... or "
        "--hostfile FILE (this host first)");
  }
  spdlog::info("hosts from {} ({} job {}): {} hosts", allocation->origin,
               launch::to_string(allocation->scheduler), allocation->job_id,
               allocation->hosts.size());
  if (allocation->scheduler == launch::Scheduler::kPmix && allocation->processes == 1 &&
      allocation->origin == "PMIx PMIX_NODE_LIST") {
    // mpirun -np 1 --host a,b,c: PMIx names only the nodes that run the job's processes.
    spdlog::warn(
        "PMIx names only this node ({}): to reach every node of the allocation, start imgcast "
        "once per node (mpirun --map-by ppr:1:node) or pass --hosts",
        allocation->hosts.front());
  }
  return allocation->hosts;
}

// How the agents start: one srun step inside Slurm, one mpirun, or one --rsh per host.
std::vector<std::string> agent_step(const std::string& launcher, bool rsh_given,
                                    const std::optional<launch::Allocation>& allocation,
                                    const std::vector<std::string>& hosts) {
  std::string which = launcher;
  if (which == "auto") {
    which = !rsh_given && allocation && allocation->scheduler == launch::Scheduler::kSlurm
                ? "srun"
                : "rsh";
  }
  if (which == "rsh" || hosts.size() < 2)
    return {};
  std::string others;
  for (std::size_t i = 1; i < hosts.size(); ++i)
    others += (others.empty() ? "" : ",") + hosts[i];
  const std::string count = std::to_string(hosts.size() - 1);
  if (which == "srun") {
    // --overlap: the step shares the CPUs the batch step holds (Slurm 20.11+).
    return {"srun",          "--overlap",          "--ntasks-per-node=1", "--ntasks=" + count,
            "--nodes=" + count, "--nodelist=" + others, "--kill-on-bad-exit=0",
            "--job-name=imgcast-agents"};
  }
  if (which == "mpirun") {
    return {"mpirun", "--host", others, "--map-by", "ppr:1:node", "-np", count,
            "-x",     replicator::kSecretVariable};
  }
  throw replicator::InputError(
      fmt::format("--launcher '{}' is not auto, srun, mpirun or rsh", launcher));
}

}  // namespace

Run add_replicate_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<ReplicateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "replicate",
      "Stage SRC onto every host as DST: read once here, relayed host to host. SRC may be an "
      "image file, a directory, or several of them");
  cmd->footer(
      "Run it on the first host of the list. DST may contain %r (rank) and %h (host).\n"
      "Inside a Slurm, PBS, LSF or PMIx job the hosts come from the allocation; under Slurm the\n"
      "agents start as one srun step. Started once per node as a PMIx job (mpirun --map-by\n"
      "ppr:1:node), rank 0 replicates to the job's nodes and the other ranks return at once.\n"
      "Examples:\n"
      "  imgcast replicate /lustre/app.sif /tmp/app.sif            (in an sbatch script)\n"
      "  imgcast replicate /lustre/app.sif /tmp/app.sif --hostfile $PBS_NODEFILE\n"
      "  imgcast replicate app.sif /tmp/app.sif --hosts node1,node2,node3 --rsh 'ssh -x'\n"
      "  imgcast replicate /lustre/envs/py311 /tmp/py311   (a directory: DST becomes a copy)\n"
      "  imgcast replicate app.sif data/ env/ /tmp/job     (several: /tmp/job/app.sif, data, env)\n"
      "A directory tree keeps files, directories, symlinks (never followed), hardlinks, modes and\n"
      "mtimes (owners when run as root); its DST must not exist, or be an earlier imgcast copy of\n"
      "a tree, which is replaced atomically. --mode applies to image files only.");
  cmd->add_option("SRC... DST", args->paths,
                  "The image file or directory to stage (read once, on this host), or several, "
                  "then the path of the copy on every host")
      ->required()
      ->expected(1, 1 << 20);
  auto* hosts = cmd->add_option(
      "--hosts", args->hosts,
      "Comma-separated hosts, this one first (default: the Slurm, PBS, LSF or PMIx allocation)");
  cmd->add_option("--hostfile", args->hostfile, "File with one host per line, this one first")
      ->excludes(hosts);
  cmd->add_option("--launcher", args->launcher,
                  "How agents start: auto (srun inside Slurm, else --rsh), srun, mpirun or rsh")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "srun", "mpirun", "rsh"}));
  auto* rsh = cmd->add_option("--rsh", args->rsh,
                  "Command that starts the agent on a host: CMD HOST 'command' ('local': this "
                  "machine)")
      ->capture_default_str();
  cmd->add_option("--chunk-size", args->chunk_size, "Chunk size (4K..1G), or auto")
      ->capture_default_str()
      ->check(chunk_size_check());
  cmd->add_option("--topology", args->topology, "auto, binomial, chain, kary:K or twotree")
      ->capture_default_str();
  cmd->add_option("--link-mbit", args->link_mbit,
                  "Link bandwidth the auto plan assumes, Mbit/s per direction (default: "
                  "measured during setup)")
      ->check(CLI::Range(1.0, 1e7));
  cmd->add_option("--hop-latency-us", args->hop_latency_us,
                  "Per-chunk cost of one hop the auto plan assumes, microseconds")
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
  cmd->add_option("--connect-timeout", args->connect_timeout,
                  "Seconds for every agent to join and get ready")
      ->capture_default_str()
      ->check(seconds_check());
  cmd->add_option("--stall-timeout", args->stall_timeout,
                  "Seconds without progress before a node counts as failed")
      ->capture_default_str()
      ->check(seconds_check());
  cmd->add_flag("--force", args->force,
                "Send the image even to hosts whose copy is already this image (cached)");
  cmd->add_flag("--follow-symlinks", args->follow_symlinks,
                "Allow DST's directory to be reached through a symlink (refused otherwise)");
  cmd->add_option("--allow-fail", args->allow_fail,
                  "Up to K hosts (not this one) may fail and the run still exits 0 (they are "
                  "still named)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  add_cache_flags(cmd, args->cache,
                  "Stage SRC (one image file) into every host's node cache, kept across jobs; DST "
                  "is then optional and placed from the cache entry (a link where it can be)");
  cmd->add_flag("--json", args->json, "Print the summary as JSON (schema in docs/usage.md)");
  cmd->add_option("--agent-path", args->agent_path,
                  "imgcast's path on the other hosts (default: this executable's path)");

  return [args, &global, rsh]() {
    setup_logging(hostname(), 0, global.level());
    return run_guarded([&] {
      // --json: stdout holds the document alone, whatever a library prints meanwhile (UCX is
      // first loaded when the transport is chosen, below).
      std::optional<ResultOutput> json_out;
      if (args->json) {
        json_out.emplace();
      }
      replicator::ReplicateOptions options;
      if (args->cache.cache) {
        if (args->paths.size() > 2) {
          throw replicator::InputError("--cache takes one image file: SRC [DST]");
        }
        options.source = args->paths.front();
        options.destination = args->paths.size() == 2 ? args->paths.back() : std::string();
        options.cache = cache_options(args->cache);
      } else if (args->paths.size() < 2) {
        throw replicator::InputError(
            "name the source and the destination: imgcast replicate SRC... DST (or --cache SRC)");
      } else {
        options.destination = args->paths.back();
        if (args->paths.size() == 2) {
          options.source = args->paths.front();  // one file or one directory (root_source.h)
        } else {
          options.sources.assign(args->paths.begin(), args->paths.end() - 1);
        }
      }
      std::optional<launch::Allocation> allocation;
      options.hosts = choose_hosts(*args, allocation);
      if (allocation && allocation->rank != 0) {
        // A PMIx job started one process per node: one replicate serves the whole job, so the
        // others leave it to rank 0 instead of each sending the image again.
        spdlog::info("rank {} of {} in {} job {}: rank 0 replicates for the job", allocation->rank,
                     allocation->processes, launch::to_string(allocation->scheduler),
                     allocation->job_id);
        return 0;
      }
      options.rsh = args->rsh;
      options.agent_step = agent_step(args->launcher, rsh->count() > 0, allocation, options.hosts);
      options.agent_program = args->agent_path.empty() ? self_path() : args->agent_path;
      options.agent_args = global.agent_args();
      // The live line only on a terminal: logs and pipes get the summary alone.
      std::optional<ProgressLine> progress;
      if (!global.quiet && !args->json && ::isatty(STDOUT_FILENO)) {
        progress.emplace(std::cout);
        options.on_progress = [&progress](const replicator::ProgressSnapshot& snapshot) {
          progress->update(snapshot);
        };
      }
      apply_plan_options(args->topology, args->chunk_size, args->link_mbit, args->hop_latency_us,
                         options);
      options.transport = transport::choose_kind(args->transport);
      options.transport_fallback = args->transport == "auto";
      options.mode = parse_mode(args->mode, args->allow_setid);
      options.force = args->force;
      options.allow_fail = args->allow_fail;
      options.follow_symlinks = args->follow_symlinks;
      options.key = key_from_environment();
      options.connect_timeout = parse_seconds(args->connect_timeout, "--connect-timeout");
      options.bind_any = global.bind == "any";
      options.stall_timeout = parse_seconds(args->stall_timeout, "--stall-timeout");
      const replicator::Report report = replicator::replicate(options, context_factory());
      if (progress) {
        progress->clear();
      }
      if (json_out) {
        std::ostringstream document;
        report.print_json(document);
        json_out->write(document.str());
      } else if (!global.quiet) {
        report.print(std::cout);
      }
      return report_exit(report);
    });
  };
}

}  // namespace imgcast::cli
