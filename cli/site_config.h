// The site config file: defaults for the options of the user-facing subcommands (replicate,
// hook, demo) and the global options, set by an admin in /etc/imgcast.conf (or by a user in the
// file IMGCAST_CONFIG names). The format is CLI11's own TOML/INI reader (keys are the options'
// long names, sections the subcommands), and the values go through the very same CLI11 options
// and validators as the command line: CLI11 applies a key only to an option the command line
// left unset, which gives "command line wins over the file" for free.
//
// Precedence, highest first: command line > environment variable (IMGCAST_RDMA_DEVICE,
// IMGCAST_RENDEZVOUS_DIR) > config file > built-in default.
#pragma once

#include <CLI/CLI.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace imgcast::cli {

// The subcommands whose options the file may set. Not `agent`: the root starts it (over ssh,
// srun or mpirun) with every setting that matters on its command line, and a node's own file
// must not change what it does in the protocol.
inline const std::vector<std::string> kConfigurableSubcommands = {"replicate", "hook", "demo"};

inline constexpr const char* kDefaultConfigPath = "/etc/imgcast.conf";
inline constexpr const char* kConfigVariable = "IMGCAST_CONFIG";

struct SiteConfig {
  std::string path;                    // as named (default or IMGCAST_CONFIG)
  std::vector<CLI::ConfigItem> items;  // as CLI11's TOML reader split the file
};

// The config file to use, read and split into items, or nullopt when there is none: no
// /etc/imgcast.conf, or IMGCAST_CONFIG set but empty (the way to run with the built-in
// defaults alone). Throws InputError (exit 1) for a file IMGCAST_CONFIG names that does not
// exist or cannot be read, and SecurityError (exit 4) for a file another user may have written.
std::optional<SiteConfig> load_site_config();

// Where an environment variable imgcast already reads stands for the same setting as a key
// of the file: the variable wins over the file (and the command line over both).
struct EnvShadow {
  std::string section;  // "" for a global option
  std::string key;      // the option's long name
  std::string variable;
};
const std::vector<EnvShadow>& environment_shadows();
// The value of the variable that shadows `section`.`key`, if it is set and not empty.
std::optional<std::pair<std::string, std::string>> shadowing_variable(const std::string& section,
                                                                      const std::string& key);

// What is left to apply after checking the file against `app`'s options: one warning per key
// that names no option (or one the file may not set), and the keys an environment variable
// overrides, which are dropped. Installs the rest as `app`'s config: the next app.parse()
// applies it under every option the command line did not set, through the option's validators.
struct AppliedConfig {
  std::vector<std::string> warnings;  // one line each, naming the file and the key
  // "section.key" (or "key") of every item that will be applied.
  std::vector<std::string> applied;
};
AppliedConfig install_site_config(CLI::App& app, const SiteConfig& config);

}  // namespace imgcast::cli
