#include "cli/show_config.h"

#include <fmt/format.h>

#include <algorithm>

#include "cli/site_config.h"

namespace imgcast::cli {

namespace {

// The options a config file may set: named ones (not SRC/DST), not --help and the like.
bool listed(const CLI::Option* option) {
  return option->nonpositional() && option->get_configurable() && !option->get_group().empty();
}

bool is_flag(const CLI::Option* option) { return option->get_expected_min() == 0; }

// A value as a config file would spell it: text quoted, numbers and flags bare.
std::string spelled(const CLI::Option* option, const std::vector<std::string>& values) {
  if (is_flag(option)) {
    if (values.empty())
      return "false";
    // -vv: one result per repetition; say how many.
    return values.size() > 1 ? std::to_string(values.size()) : values.front();
  }
  // "TEXT", or "TEXT:{auto,any}" with an IsMember check.
  const bool text = option->get_type_name().rfind("TEXT", 0) == 0;
  std::vector<std::string> words;
  for (const auto& value : values)
    words.push_back(text ? fmt::format("\"{}\"", value) : value);
  return words.size() == 1 ? words.front() : fmt::format("[{}]", fmt::join(words, ", "));
}

void print_section(std::ostream& out, const SettingsView& view, const std::string& section) {
  const CLI::App* effective =
      section.empty() ? view.effective : view.effective->get_subcommand(section);
  const CLI::App* command_line =
      section.empty() ? view.command_line : view.command_line->get_subcommand(section);
  if (!section.empty())
    out << fmt::format("\n[{}]\n", section);
  for (const CLI::Option* option : effective->get_options()) {
    if (!listed(option))
      continue;
    const std::string key = option->get_single_name();
    const std::string dotted = section.empty() ? key : section + "." + key;
    const CLI::Option* given = command_line->get_option_no_throw("--" + key);
    std::string line;
    std::string origin;
    if (given != nullptr && given->count() > 0) {
      line = fmt::format("{} = {}", key, spelled(option, option->results()));
      origin = "command line";
    } else if (auto variable = shadowing_variable(section, key)) {
      line = fmt::format("{} = {}", key, spelled(option, {variable->second}));
      origin = "environment " + variable->first;
    } else if (std::find(view.applied.begin(), view.applied.end(), dotted) != view.applied.end()) {
      line = fmt::format("{} = {}", key, spelled(option, option->results()));
      origin = "config file " + view.config_path;
    } else if (!option->get_default_str().empty() || is_flag(option)) {
      line = fmt::format("{} = {}", key,
                         is_flag(option) ? "false" : spelled(option, {option->get_default_str()}));
      origin = "default";
    } else {
      // No built-in value: the subcommand works it out at run time (measured, the launcher's).
      line = fmt::format("# {} =", key);
      origin = "default: not set (see --help)";
    }
    out << fmt::format("{:<44} # {}\n", line, origin);
  }
}

}  // namespace

void print_settings(std::ostream& out, const SettingsView& view) {
  out << "# imgcast --show-config: the effective settings and where each comes from\n"
      << "# precedence: command line > environment > config file > default\n"
      << "# " << view.config_note << "\n";
  print_section(out, view, "");
  for (const auto& section : kConfigurableSubcommands) {
    if (view.only_subcommand.empty() || view.only_subcommand == section)
      print_section(out, view, section);
  }
}

}  // namespace imgcast::cli
