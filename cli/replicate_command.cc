// imgcast replicate SRC DST --hosts h1,h2,... | --hostfile F [--rsh CMD] ...
#include <fmt/format.h>
#include <unistd.h>

#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cli/context_factory.h"
#include "cli/logging.h"
#include "cli/progress_line.h"
#include "cli/run_guard.h"
#include "replicator/parse.h"
#include "replicator/replicate.h"
#include "transport/factory.h"

namespace imgcast::cli {

namespace {

struct ReplicateArgs {
  std::string source;
  std::string destination;
  std::string hosts;
  std::string hostfile;
  std::string rsh = "ssh";
  std::string chunk_size = "auto";
  std::string topology = "auto";
  double link_mbit = 10000;
  double hop_latency_us = 50;
  std::string transport = "auto";
  std::string mode = "0644";
  std::string agent_path;
  double connect_timeout = 30;
  bool json = false;
  double stall_timeout = 60;
};

mode_t parse_mode(const std::string& text) {
  std::size_t used = 0;
  unsigned long value = 0;
  try {
    value = std::stoul(text, &used, 8);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || value > 07777) {
    throw replicator::InputError(
        fmt::format("--mode '{}' is not an octal file mode: use e.g. 0644 or 0755", text));
  }
  return static_cast<mode_t>(value);
}

std::chrono::milliseconds parse_seconds(double seconds, const char* what) {
  if (!(seconds > 0) || seconds > 86400) {
    throw replicator::InputError(fmt::format(
        "{} {} is out of range: use a number of seconds between 0 and 86400", what, seconds));
  }
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

}  // namespace

Run add_replicate_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<ReplicateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "replicate", "Stage SRC onto every host as DST: read once here, relayed host to host");
  cmd->footer(
      "Run it on the first host of the list. DST may contain %r (rank) and %h (host).\n"
      "Examples:\n"
      "  imgcast replicate /lustre/app.sif /tmp/app.sif --hostfile $PBS_NODEFILE\n"
      "  imgcast replicate app.sif /tmp/app.sif --hosts node1,node2,node3 --rsh 'ssh -x'");
  cmd->add_option("SRC", args->source, "Image to stage (read once, on this host)")->required();
  cmd->add_option("DST", args->destination, "Path of the copy on every host")->required();
  auto* hosts = cmd->add_option("--hosts", args->hosts, "Comma-separated hosts, this one first");
  cmd->add_option("--hostfile", args->hostfile, "File with one host per line, this one first")
      ->excludes(hosts);
  cmd->add_option("--rsh", args->rsh,
                  "Command that starts the agent on a host: CMD HOST 'command' ('local': this "
                  "machine)")
      ->capture_default_str();
  cmd->add_option("--chunk-size", args->chunk_size, "Chunk size (4K..1G), or auto")
      ->capture_default_str();
  cmd->add_option("--topology", args->topology, "auto, binomial, chain or kary:K")
      ->capture_default_str();
  cmd->add_option("--link-mbit", args->link_mbit,
                  "Link bandwidth the auto plan assumes, Mbit/s per direction")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 1e7));
  cmd->add_option("--hop-latency-us", args->hop_latency_us,
                  "Per-chunk cost of one hop the auto plan assumes, microseconds")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--transport", args->transport, "tcp, ucx, verbs or auto")->capture_default_str();
  cmd->add_option("--mode", args->mode, "File mode of every copy (octal)")->capture_default_str();
  cmd->add_option("--connect-timeout", args->connect_timeout,
                  "Seconds for every agent to join and get ready")
      ->capture_default_str();
  cmd->add_option("--stall-timeout", args->stall_timeout,
                  "Seconds without progress before a node counts as failed")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Print the summary as JSON (schema in docs/usage.md)");
  cmd->add_option("--agent-path", args->agent_path,
                  "imgcast's path on the other hosts (default: this executable's path)");

  return [args, &global]() {
    setup_logging(hostname(), 0, global.level());
    return run_guarded([&] {
      replicator::ReplicateOptions options;
      options.source = args->source;
      options.destination = args->destination;
      if (!args->hostfile.empty()) {
        options.hosts = replicator::read_hostfile(args->hostfile);
      } else if (!args->hosts.empty()) {
        options.hosts = replicator::parse_host_list(args->hosts);
      } else {
        throw replicator::InputError(
            "no hosts: pass --hosts h1,h2,... or --hostfile FILE (this host first)");
      }
      options.rsh = args->rsh;
      options.agent_program = args->agent_path.empty() ? self_path() : args->agent_path;
      options.agent_args = {"--log-level", global.level()};
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
      options.mode = parse_mode(args->mode);
      options.connect_timeout = parse_seconds(args->connect_timeout, "--connect-timeout");
      options.stall_timeout = parse_seconds(args->stall_timeout, "--stall-timeout");
      const replicator::Report report = replicator::replicate(options, context_factory());
      if (progress) {
        progress->clear();
      }
      if (args->json) {
        report.print_json(std::cout);
      } else if (!global.quiet) {
        report.print(std::cout);
      }
      return report_exit(report);
    });
  };
}

}  // namespace imgcast::cli
