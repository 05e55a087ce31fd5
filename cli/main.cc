// imgcast: stage a container image onto every node of an HPC job, reading it once.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string_view>

#include "cli/commands.h"
#include "cli/descriptor_limit.h"
#include "cli/key_hygiene.h"
#include "cli/logging.h"
#include "cli/run_guard.h"
#include "cli/show_config.h"
#include "cli/site_config.h"
#include "replicator/errors.h"

namespace {

using imgcast::replicator::ExitCode;

// One parse of the command line: the app, the variables its options fill, and the subcommands'
// entry points. main() builds it twice when there is a config file (see there).
struct Cli {
  CLI::App app{"imgcast: stage a container image onto every node of a job, reading it once"};
  imgcast::cli::GlobalOptions global;
  bool show_config = false;
  imgcast::cli::Run replicate, agent, demo, hook, cache;
};

// `show_config`: argv asks for --show-config, which needs neither a subcommand nor its
// positional arguments (imgcast --show-config replicate --transport tcp is enough).
std::unique_ptr<Cli> make_cli(bool show_config) {
  auto cli = std::make_unique<Cli>();
  CLI::App& app = cli->app;
  app.set_version_flag("--version", std::string("imgcast ") + IMGCAST_VERSION)
      ->configurable(false);
  app.get_help_ptr()->configurable(false);
  app.require_subcommand(show_config ? 0 : 1, 1);
  app.footer(
      "Examples:\n"
      "  imgcast demo                                        try it on this machine\n"
      "  imgcast replicate /lustre/app.sif /tmp/app.sif      in a Slurm/PBS/LSF job script\n"
      "  srun imgcast hook /lustre/app.sif /tmp/app.sif -- apptainer exec /tmp/app.sif app\n"
      "Run 'imgcast SUBCOMMAND --help' for each subcommand's options (man imgcast).\n"
      "Defaults for the options of replicate, hook and demo come from /etc/imgcast.conf (or the\n"
      "file $IMGCAST_CONFIG names); the command line wins. See 'imgcast --show-config'.\n"
      "Exit codes: 0 success, 1 usage or bad input, 2 transfer failed, 3 partial (some nodes "
      "failed), 4 refused for security reasons.");
  imgcast::cli::GlobalOptions& global = cli->global;
  app.add_flag("--show-config", cli->show_config,
               "Print the effective settings (of SUBCOMMAND, if given) and where each comes "
               "from: command line, environment, config file, default; then exit")
      ->configurable(false);
  app.add_option(
         "--log-level", global.log_level,
         "trace, debug, info, warn, error or off (default: $SPDLOG_LEVEL, else warn; wins over -v)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_flag("-v,--verbose", global.verbose, "More log lines: -v info, -vv debug");
  app.add_flag("-q,--quiet", global.quiet, "No progress line and no summary table");
  app.add_option("--rdma-device", global.rdma_device,
                 "RDMA device and port for --transport verbs, e.g. mlx5_0:1 (default: "
                 "$IMGCAST_RDMA_DEVICE, else the first with an active port); agents get it too")
      ->check(CLI::Validator(
          [](const std::string& value) {
            const bool ok = !value.empty() && value.size() <= 64 &&
                            value.find_first_not_of(
                                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"
                                "STUVWXYZ0123456789_.-:") == std::string::npos;
            return ok ? std::string() : "not DEVICE or DEVICE:PORT (letters, digits, _ . - :)";
          },
          "DEV[:PORT]"));

  app.add_option("--bind", global.bind,
                 "Where this node's listeners bind: auto (the address of its name in the job's "
                 "host list) or any (every address); agents get it too")
      ->check(CLI::IsMember({"auto", "any"}))
      ->capture_default_str();

  cli->replicate = imgcast::cli::add_replicate_command(app, global);
  cli->agent = imgcast::cli::add_agent_command(app, global);
  cli->demo = imgcast::cli::add_demo_command(app, global);
  cli->hook = imgcast::cli::add_hook_command(app, global);
  cli->cache = imgcast::cli::add_cache_command(app, global);
  for (CLI::App* sub : app.get_subcommands({})) {
    sub->get_help_ptr()->configurable(false);
    if (!show_config)
      continue;
    for (CLI::Option* option : sub->get_options()) {
      if (!option->nonpositional())
        option->required(false);
    }
  }
  return cli;
}

bool asks_show_config(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (word == "--")
      return false;
    if (word == "--show-config")
      return true;
  }
  return false;
}

// The words after argv's first `--` (-1: there is none).
int words_after_separator(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--")
      return argc - 1 - i;
  }
  return -1;
}

// Parses argv; an exit code when the process should end here (help, version, an error).
// `config_path`: the config file applied, to which an error on this parse is due (the same argv
// has already parsed cleanly without it).
std::optional<int> parse(CLI::App& app, int argc, char** argv, const std::string& config_path) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (!config_path.empty()) {
      std::cerr << "imgcast: error: config file " << config_path << ": " << e.what()
                << " (fix the file, or override it on the command line)\n";
    } else {
      const std::string what = e.what();
      std::cerr << "imgcast: error: " << what << " (see imgcast --help"
                << (what.find("--show-config") != std::string::npos
                        ? "; --show-config goes before the subcommand"
                        : "")
                << ")\n";
    }
    return static_cast<int>(ExitCode::kUsage);
  }
  return std::nullopt;
}

int run(Cli& cli) {
  const imgcast::cli::GlobalOptions& global = cli.global;
  // The verbs backend reads its device from the environment (it also serves the hook and the
  // SPANK plugin, which set no flags): the flag wins over an inherited value. (A config file's
  // rdma-device was dropped when IMGCAST_RDMA_DEVICE is set, so it cannot override it here.)
  if (!global.rdma_device.empty()) {
    ::setenv("IMGCAST_RDMA_DEVICE", global.rdma_device.c_str(), 1);
  }
  // A root holds one descriptor per agent: the common soft limit of 1,024 is not enough.
  imgcast::cli::raise_descriptor_limit();
  // Every subcommand makes or receives a job key from here on.
  imgcast::cli::keep_key_out_of_dumps();
  if (cli.app.got_subcommand("replicate"))
    return cli.replicate();
  if (cli.app.got_subcommand("agent"))
    return cli.agent();
  if (cli.app.got_subcommand("hook"))
    return cli.hook();
  if (cli.app.got_subcommand("cache"))
    return cli.cache();
  return cli.demo();
}

void warn_all(const imgcast::cli::GlobalOptions& global, const std::vector<std::string>& lines) {
  if (lines.empty())
    return;
  imgcast::cli::setup_logging(imgcast::cli::hostname(), 0, global.level());
  for (const auto& line : lines)
    spdlog::warn("{}", line);
}

std::string subcommand_of(const CLI::App& app) {
  const auto subs = app.get_subcommands();
  return subs.empty() ? std::string() : subs.front()->get_name();
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = imgcast::cli;
  const bool show = asks_show_config(argc, argv);
  // First the command line alone: its own errors are reported as such, --help and --version
  // need no config, and it records what the command line set (for --show-config).
  const std::unique_ptr<Cli> given = make_cli(show);
  if (auto code = parse(given->app, argc, argv, ""))
    return *code;
  given->global.words_after_separator = words_after_separator(argc, argv);
  // The agent never reads a config file: the root that starts it passes every setting on its
  // command line, and a node's own file must not change its part in the protocol.
  if (given->app.got_subcommand("agent")) {
    if (show) {
      std::cout << "# imgcast agent takes no settings from a config file: the root passes them "
                   "on its command line\n";
      return 0;
    }
    return run(*given);
  }

  std::optional<cli::SiteConfig> config;
  try {
    config = cli::load_site_config();
  } catch (const imgcast::replicator::ImgcastError& error) {
    std::cerr << "imgcast: error: " << error.what() << "\n";
    return static_cast<int>(error.code());
  }
  // Then, with a config file, the same command line again on a fresh app with the file
  // installed: CLI11 fills each option the command line left unset from the file, through the
  // option's own validators, so any error now is the file's.
  Cli* effective = given.get();
  std::unique_ptr<Cli> configured;
  cli::AppliedConfig applied;
  if (config) {
    configured = make_cli(show);
    applied = cli::install_site_config(configured->app, *config);
    if (auto code = parse(configured->app, argc, argv, config->path)) {
      warn_all(given->global, applied.warnings);
      return *code;
    }
    effective = configured.get();
    effective->global.words_after_separator = words_after_separator(argc, argv);
  }
  warn_all(effective->global, applied.warnings);

  if (show) {
    const char* variable = std::getenv(cli::kConfigVariable);
    std::string note;
    if (config) {
      note = "config file: " + config->path + (variable ? " (from IMGCAST_CONFIG)" : "");
    } else if (variable) {
      note = "config file: none (IMGCAST_CONFIG is empty)";
    } else {
      note = std::string("config file: none (no ") + cli::kDefaultConfigPath + ")";
    }
    cli::print_settings(std::cout, {&given->app, &effective->app, config ? config->path : "",
                                    note, applied.applied, subcommand_of(given->app)});
    return 0;
  }
  return run(*effective);
}
