// imgcast agent: started by `imgcast replicate` on every other host; reads the job secret from
// standard input.
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "cli/context_factory.h"
#include "cli/logging.h"
#include "replicator/agent.h"

namespace imgcast::cli {

namespace {
struct AgentArgs {
  std::string control;
  int rank = 0;
  std::string host;
  double connect_timeout = 30;
};
}  // namespace

Run add_agent_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<AgentArgs>();
  CLI::App* cmd = app.add_subcommand(
      "agent", "Receive and relay one node's copy (started by imgcast replicate, not by hand)");
  cmd->add_option("--control", args->control, "The root's control address, host:port")->required();
  cmd->add_option("--rank", args->rank, "This node's rank in the host list")
      ->required()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--host", args->host, "This node's name in the host list")->required();
  cmd->add_option("--connect-timeout", args->connect_timeout, "Seconds to reach the root")
      ->capture_default_str();

  return [args, &global]() {
    setup_logging(args->host, args->rank, global.level());
    replicator::AgentOptions options;
    options.control_address = args->control;
    options.rank = args->rank;
    options.host = args->host;
    options.connect_timeout =
        std::chrono::milliseconds(static_cast<long long>(args->connect_timeout * 1000));
    // The secret arrives on standard input so that it never shows in `ps` or a log.
    std::getline(std::cin, options.secret_line);
    return static_cast<int>(replicator::run_agent(options, context_factory()));
  };
}

}  // namespace imgcast::cli
