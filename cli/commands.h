// The imgcast subcommands. Each registers its options on the CLI11 app and returns the
// callback that runs it; the callback returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace imgcast::cli {

using Run = std::function<int()>;

struct GlobalOptions {
  std::string log_level;  // "", "trace", "debug", "info", "warn", "error", "off"
  int verbose = 0;        // -v: info, -vv: debug (--log-level wins)
  bool quiet = false;     // -q: no progress line and no table; errors and --json only

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

}  // namespace imgcast::cli
