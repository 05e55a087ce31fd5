// imgcast agent: started by `imgcast replicate` on every other host. The job secret arrives on
// standard input or, when one launcher process starts every agent (srun, mpirun), in the
// environment variable IMGCAST_JOB_SECRET; never in argv.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>

#include "cli/commands.h"
#include "cli/context_factory.h"
#include "cli/key_hygiene.h"
#include "cli/launch/node_identity.h"
#include "cli/logging.h"
#include "cli/result_output.h"
#include "cli/run_guard.h"
#include "replicator/session/agent.h"
#include "cli/parse.h"
#include "replicator/session/replicate.h"

namespace imgcast::cli {

namespace {
struct AgentArgs {
  std::string control;
  std::string rank;
  std::string host;
  std::string hosts;
  double connect_timeout = 30;
  std::uint16_t data_port = 0;
  std::string advertise_data;  // HOST:PORT, empty: as bound
};

// --advertise-data HOST:PORT -> its two halves (the last colon splits, so HOST may be IPv6).
std::pair<std::string, std::uint16_t> parse_advertised(const std::string& text) {
  const auto colon = text.rfind(':');
  int port = 0;
  if (colon != std::string::npos && colon > 0) {
    try {
      std::size_t used = 0;
      port = std::stoi(text.substr(colon + 1), &used);
      if (used != text.size() - colon - 1)
        port = 0;
    } catch (const std::exception&) {
    }
  }
  if (port < 1 || port > 65535) {
    throw replicator::InputError(
        fmt::format("--advertise-data '{}' is not HOST:PORT with a port from 1 to 65535", text));
  }
  return {text.substr(0, colon), static_cast<std::uint16_t>(port)};
}

std::string take_secret() {
  if (std::optional<std::string> line = take_from_environment(replicator::kSecretVariable)) {
    return *line;
  }
  std::string line;
  std::getline(std::cin, line);
  return line;
}

// --rank auto: this host's place in --hosts, found by its own name (SLURMD_NODENAME, else the
// host name), so one command line serves every node of an srun or mpirun step.
int resolve_rank(const AgentArgs& args, const std::string& host) {
  if (args.rank != "auto") {
    int rank = 0;
    try {
      std::size_t used = 0;
      rank = std::stoi(args.rank, &used);
      if (used != args.rank.size())
        rank = 0;
    } catch (const std::exception&) {
    }
    if (rank < 1 || rank > (1 << 20)) {
      throw replicator::InputError(
          fmt::format("--rank '{}' is not auto or a number from 1 to {}", args.rank, 1 << 20));
    }
    return rank;
  }
  if (args.hosts.empty()) {
    throw replicator::InputError("--rank auto needs --hosts, the job's host list, root first");
  }
  const std::vector<std::string> hosts = parse_host_list(args.hosts);
  for (std::size_t i = 1; i < hosts.size(); ++i) {
    if (hosts[i] == host)
      return static_cast<int>(i);
  }
  throw replicator::InputError(fmt::format(
      "this host ({}) is not an agent host of --hosts {}: pass --host with its name in the list",
      host, args.hosts));
}
}  // namespace

Run add_agent_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<AgentArgs>();
  CLI::App* cmd = app.add_subcommand(
      "agent", "Receive and relay one node's copy (started by imgcast replicate, not by hand)");
  cmd->footer(
      "The job secret arrives on standard input, or in IMGCAST_JOB_SECRET from srun/mpirun.\n"
      "Examples (what imgcast replicate runs):\n"
      "  ssh node4 'imgcast agent --control node1:40123 --rank 3 --host node4'\n"
      "  srun --overlap ... imgcast agent --control node1:40123 --rank auto --host auto "
      "--hosts node1,node2,node3");
  cmd->add_option("--control", args->control, "The root's control address, host:port")->required();
  cmd->add_option("--rank", args->rank,
                  "This node's rank in the host list, or auto (find --host in --hosts)")
      ->required();
  cmd->add_option("--host", args->host,
                  "This node's name in the host list, or auto (SLURMD_NODENAME, else hostname)")
      ->required();
  cmd->add_option("--hosts", args->hosts, "The job's hosts, root first (for --rank auto)");
  cmd->add_option("--connect-timeout", args->connect_timeout, "Seconds to reach the root")
      ->capture_default_str();
  cmd->add_option("--data-port", args->data_port,
                  "Listen for data on this port (default: an ephemeral one), e.g. for a firewall");
  cmd->add_option("--advertise-data", args->advertise_data,
                  "HOST:PORT the other nodes connect to for data, when they reach this node "
                  "through a port forward or proxy (default: --host and the bound port)");

  return [args, &global]() {
    const std::string secret = take_secret();
    const std::string host =
        args->host == "auto" ? launch::this_node_name(launch::process_environment()) : args->host;
    int rank = 0;
    std::pair<std::string, std::uint16_t> advertised;
    try {
      rank = resolve_rank(*args, host);
      if (!args->advertise_data.empty())
        advertised = parse_advertised(args->advertise_data);
    } catch (const replicator::ImgcastError& error) {
      setup_logging(host, 0, global.level());
      std::cerr << "imgcast agent: error: " << error.what() << "\n";
      return static_cast<int>(error.code());
    }
    setup_logging(host, rank, global.level());
    // An agent prints no result; its stdout reaches the root's (through ssh), where a UCX
    // warning would land inside the root's --json document.
    send_stdout_to_stderr();
    replicator::AgentOptions options;
    options.control_address = args->control;
    options.rank = rank;
    options.host = host;
    options.secret_line = secret;
    options.data_port = args->data_port;
    options.advertise_host = advertised.first;
    options.advertise_port = advertised.second;
    options.bind_any = global.bind == "any";
    options.connect_timeout =
        std::chrono::milliseconds(static_cast<long long>(args->connect_timeout * 1000));
    return static_cast<int>(replicator::run_agent(options, context_factory()));
  };
}

}  // namespace imgcast::cli
