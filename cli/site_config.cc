#include "cli/site_config.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "replicator/errors.h"
#include "replicator/image/file_trust.h"

namespace imgcast::cli {

namespace {

namespace fs = std::filesystem;
using replicator::InputError;
using replicator::SecurityError;

// A config file is a few dozen lines; anything this big is not one (a wrong IMGCAST_CONFIG).
constexpr off_t kMaxConfigBytes = 1 << 20;

// Closes a descriptor on every path out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0)
      ::close(fd);
  }
};

// Why `file` (fstat of the opened config) may hold another user's words, or nullopt. Unlike a
// cached copy (file_distrust), a config may also be root's: /etc/imgcast.conf is, and every
// user reads it. Either way no group or other may write it.
std::optional<std::string> config_distrust(const struct stat& file) {
  if (!S_ISREG(file.st_mode))
    return std::string("it is not a regular file");
  if (file.st_uid != ::geteuid() && file.st_uid != 0)
    return fmt::format("it belongs to uid {}, not to you (uid {}) or root", file.st_uid,
                       ::geteuid());
  if ((file.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return fmt::format("it is writable by group or others (mode {:04o}): chmod go-w it",
                       file.st_mode & 07777);
  return std::nullopt;
}

std::string read_all(int fd, const std::string& path) {
  std::string content;
  char buffer[8192];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      throw InputError(fmt::format("cannot read the config file {}: {}", path,
                                   std::strerror(errno)));
    if (got == 0)
      return content;
    content.append(buffer, static_cast<std::size_t>(got));
    if (content.size() > static_cast<std::size_t>(kMaxConfigBytes))
      throw InputError(fmt::format("the config file {} is larger than 1 MiB: is {} right?", path,
                                   kConfigVariable));
  }
}

// The file's text, or nullopt when it does not exist and `explicit_path` is false. The
// directory and then the file are opened and checked by descriptor (the file without following
// a symlink), so what is read is what was checked, not whatever the path names a moment later.
std::optional<std::string> read_trusted(const std::string& path, bool explicit_path) {
  const fs::path file(path);
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  const auto missing = [&]() -> std::optional<std::string> {
    if (!explicit_path)
      return std::nullopt;  // no /etc/imgcast.conf: the built-in defaults
    throw InputError(fmt::format(
        "the config file {} named by {} does not exist: fix the path, or set {}= (empty) for "
        "no config file",
        path, kConfigVariable, kConfigVariable));
  };
  // O_PATH: enough to fstat it and open the file in it, and needs no read permission on it (a
  // home directory of mode 0711).
  Fd d{::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return missing();
    throw InputError(fmt::format("cannot open the directory of the config file {}: {}", path,
                                 std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(d.fd, &st) != 0)
    throw InputError(fmt::format("cannot stat {}: {}", dir.string(), std::strerror(errno)));
  if (auto why = replicator::directory_distrust(st)) {
    throw SecurityError(fmt::format(
        "refusing the config file {}: its directory {} {}, so another user could replace it",
        path, dir.string(), *why));
  }
  // O_NONBLOCK: a FIFO planted under the name must not hang us before the check below.
  Fd f{::openat(d.fd, file.filename().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)};
  if (f.fd < 0) {
    if (errno == ENOENT)
      return missing();
    if (errno == ELOOP)
      throw SecurityError(fmt::format(
          "refusing the config file {}: it is a symbolic link; name the file it points to", path));
    throw InputError(
        fmt::format("cannot open the config file {}: {}", path, std::strerror(errno)));
  }
  if (::fstat(f.fd, &st) != 0)
    throw InputError(fmt::format("cannot stat {}: {}", path, std::strerror(errno)));
  if (auto why = config_distrust(st))
    throw SecurityError(fmt::format("refusing the config file {}: {}", path, *why));
  return read_all(f.fd, path);
}

// Gives CLI11 the items read (and checked) here instead of reading the path again itself: the
// text it applies is the text that passed read_trusted() and the key checks.
class CheckedItems : public CLI::ConfigTOML {
 public:
  explicit CheckedItems(std::vector<CLI::ConfigItem> items) : items_(std::move(items)) {}
  std::vector<CLI::ConfigItem> from_config(std::istream& /*ignored*/) const override {
    return items_;
  }

 private:
  std::vector<CLI::ConfigItem> items_;
};

bool configurable_subcommand(const std::string& name) {
  return std::find(kConfigurableSubcommands.begin(), kConfigurableSubcommands.end(), name) !=
         kConfigurableSubcommands.end();
}

// The subcommands with an option --`key`, for the hint on a key put at the top level.
std::string sections_with(CLI::App& app, const std::string& key) {
  std::string sections;
  for (const auto& name : kConfigurableSubcommands) {
    if (app.get_subcommand(name)->get_option_no_throw("--" + key) != nullptr)
      sections += fmt::format("{}[{}]", sections.empty() ? "" : " or ", name);
  }
  return sections;
}

// Why the file may not set `item`, or nullopt when it names a settable option of `app`.
std::optional<std::string> refuse(CLI::App& app, const CLI::ConfigItem& item) {
  const std::string key = item.fullname();
  if (item.parents.size() > 1)
    return fmt::format("unknown key '{}' (sections are {})", key,
                       fmt::join(kConfigurableSubcommands, ", "));
  CLI::App* owner = &app;
  if (item.parents.size() == 1) {
    const std::string& section = item.parents.front();
    if (section == "agent")
      return fmt::format("'{}': the agent takes no settings from a config file (the root "
                         "passes them on)",
                         key);
    if (!configurable_subcommand(section))
      return fmt::format("unknown key '{}' (no section [{}]; sections are {})", key, section,
                         fmt::join(kConfigurableSubcommands, ", "));
    owner = app.get_subcommand(section);
  }
  // By the long name only: CLI11 would also take a short name ("v") or a positional's name.
  const CLI::Option* option = owner->get_option_no_throw("--" + item.name);
  if (option == nullptr) {
    const std::string where = item.parents.empty() ? sections_with(app, item.name) : "";
    if (!where.empty())
      return fmt::format("unknown key '{}' at the top level: put it under {}", key, where);
    return fmt::format("unknown key '{}' (no option --{}{})", key, item.name,
                       item.parents.empty() ? "" : " of " + item.parents.front());
  }
  if (!option->get_configurable())
    return fmt::format("'{}' cannot be set in a config file", key);
  return std::nullopt;
}

}  // namespace

std::optional<SiteConfig> load_site_config() {
  const char* named = std::getenv(kConfigVariable);
  const bool explicit_path = named != nullptr;
  if (explicit_path && *named == '\0')
    return std::nullopt;  // IMGCAST_CONFIG= : no config file at all
  SiteConfig config;
  config.path = explicit_path ? named : kDefaultConfigPath;
  const std::optional<std::string> text = read_trusted(config.path, explicit_path);
  if (!text)
    return std::nullopt;
  std::istringstream input(*text);
  try {
    config.items = CLI::ConfigTOML().from_config(input);
  } catch (const CLI::ParseError& error) {
    throw InputError(fmt::format("config file {}: {}", config.path, error.what()));
  }
  // Section ends ("--") only matter to subcommands that a section may start, none here.
  std::erase_if(config.items, [](const CLI::ConfigItem& item) {
    return item.name == "--" || item.name == "++";
  });
  return config;
}

const std::vector<EnvShadow>& environment_shadows() {
  static const std::vector<EnvShadow> shadows = {
      {"", "rdma-device", "IMGCAST_RDMA_DEVICE"},
      {"hook", "rendezvous", "IMGCAST_RENDEZVOUS_DIR"},
      {"replicate", "cache-dir", "IMGCAST_CACHE_DIR"},
      {"hook", "cache-dir", "IMGCAST_CACHE_DIR"},
  };
  return shadows;
}

std::optional<std::pair<std::string, std::string>> shadowing_variable(const std::string& section,
                                                                      const std::string& key) {
  for (const auto& shadow : environment_shadows()) {
    if (shadow.section != section || shadow.key != key)
      continue;
    const char* value = std::getenv(shadow.variable.c_str());
    if (value != nullptr && *value != '\0')
      return std::make_pair(shadow.variable, std::string(value));
  }
  return std::nullopt;
}

AppliedConfig install_site_config(CLI::App& app, const SiteConfig& config) {
  AppliedConfig result;
  std::vector<CLI::ConfigItem> kept;
  for (const CLI::ConfigItem& item : config.items) {
    // Unknown keys warn and are skipped rather than stop the run: one /etc/imgcast.conf is
    // shared by every node and often by several imgcast versions during an upgrade, and a key
    // only a newer version knows (cache-dir, say) must not break every user's job. A typo
    // still shows, one line per run.
    if (auto why = refuse(app, item)) {
      result.warnings.push_back(fmt::format("config file {}: {}, ignored", config.path, *why));
      continue;
    }
    const std::string section = item.parents.empty() ? "" : item.parents.front();
    if (shadowing_variable(section, item.name))
      continue;  // the environment wins over the file (show-config says so)
    result.applied.push_back(item.fullname());
    kept.push_back(item);
  }
  app.config_formatter(std::make_shared<CheckedItems>(std::move(kept)));
  // CLI11 reads config through an option; this one is hidden, and only on the app the config
  // is applied to, never the one that checks the command line (so users cannot pass it).
  app.set_config("--imgcast-site-config", config.path, "", true)->group("");
  return result;
}

}  // namespace imgcast::cli
