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
};

Run add_replicate_command(CLI::App& app, const GlobalOptions& global);
Run add_agent_command(CLI::App& app, const GlobalOptions& global);
Run add_demo_command(CLI::App& app, const GlobalOptions& global);

}  // namespace imgcast::cli
