// imgcast --show-config: every setting the config file could give, its effective value and
// where it came from (command line, environment VAR, config file PATH, default). The output is
// itself a valid config file (origins are comments), so an admin can start one from it.
#pragma once

#include <CLI/CLI.hpp>

#include <ostream>
#include <string>
#include <vector>

namespace imgcast::cli {

struct SettingsView {
  const CLI::App* command_line;  // parsed from argv alone: says what the command line set
  const CLI::App* effective;     // parsed with the config applied (or the same app without one)
  std::string config_path;       // "" without a config file
  std::string config_note;       // one line on which file was read, or why none
  std::vector<std::string> applied;  // "section.key" the file set (install_site_config)
  std::string only_subcommand;   // "" for every configurable subcommand
};

void print_settings(std::ostream& out, const SettingsView& view);

}  // namespace imgcast::cli
