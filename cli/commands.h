// The imgcast subcommands. Each registers its options on the CLI11 app and returns the
// callback that runs it; the callback returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace imgcast::cli {

using Run = std::function<int()>;

struct GlobalOptions {
  std::string log_level;    // "", "trace", "debug", "info", "warn", "error", "off"
  int verbose = 0;          // -v: info, -vv: debug (--log-level wins)
  bool quiet = false;       // -q: no progress line and no table; errors and --json only
  std::string rdma_device;  // --rdma-device DEV[:PORT] for the verbs backend; forwarded to agents
  std::string bind = "auto";  // --bind auto|any: where listeners bind; forwarded to agents
  // How many words follow the command line's first `--` (-1: none): hook's CMD ARGS..., which
  // CLI11 hands over as positionals after SRC... DST.
  int words_after_separator = -1;

  // The global options an agent started by this process gets, so it logs and picks its RDMA
  // device the same way.
  std::vector<std::string> agent_args() const {
    std::vector<std::string> args = {"--log-level", level()};
    if (!rdma_device.empty()) {
      args.insert(args.end(), {"--rdma-device", rdma_device});
    }
    if (bind != "auto") {
      args.insert(args.end(), {"--bind", bind});
    }
    return args;
  }

  // The spdlog level these options ask for (default: warn).
  std::string level() const {
    if (!log_level.empty())
      return log_level;
    return verbose >= 2 ? "debug" : verbose == 1 ? "info" : "warn";
  }
};

Run add_replicate_command(CLI::App& app, const GlobalOptions& global);
Run add_agent_command(CLI::App& app, const GlobalOptions& global);
Run add_demo_command(CLI::App& app, const GlobalOptions& global);
Run add_hook_command(CLI::App& app, const GlobalOptions& global);
Run add_cache_command(CLI::App& app, const GlobalOptions& global);

}  // namespace imgcast::cli
