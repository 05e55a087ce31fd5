// imgcast: stage a container image onto every node of an HPC job, reading it once.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "cli/descriptor_limit.h"
#include "cli/key_hygiene.h"
#include "replicator/errors.h"

int main(int argc, char** argv) {
  using imgcast::replicator::ExitCode;
  CLI::App app{"imgcast: stage a container image onto every node of a job, reading it once"};
  app.set_version_flag("--version", std::string("imgcast ") + IMGCAST_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  imgcast demo                                        try it on this machine\n"
      "  imgcast replicate /lustre/app.sif /tmp/app.sif      in a Slurm/PBS/LSF job script\n"
      "  srun imgcast hook /lustre/app.sif /tmp/app.sif -- apptainer exec /tmp/app.sif app\n"
      "Run 'imgcast SUBCOMMAND --help' for each subcommand's options (man imgcast).\n"
      "Exit codes: 0 success, 1 usage or bad input, 2 transfer failed, 3 partial (some nodes "
      "failed), 4 refused for security reasons.");
  imgcast::cli::GlobalOptions global;
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

  const auto replicate = imgcast::cli::add_replicate_command(app, global);
  const auto agent = imgcast::cli::add_agent_command(app, global);
  const auto demo = imgcast::cli::add_demo_command(app, global);
  const auto hook = imgcast::cli::add_hook_command(app, global);
  const auto cache = imgcast::cli::add_cache_command(app, global);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "imgcast: error: " << e.what() << " (see imgcast --help)\n";
    return static_cast<int>(ExitCode::kUsage);
  }
  // The verbs backend reads its device from the environment (it also serves the hook and the
  // SPANK plugin, which set no flags): the flag wins over an inherited value.
  if (!global.rdma_device.empty()) {
    ::setenv("IMGCAST_RDMA_DEVICE", global.rdma_device.c_str(), 1);
  }
  // A root holds one descriptor per agent: the common soft limit of 1,024 is not enough.
  imgcast::cli::raise_descriptor_limit();
  // Every subcommand makes or receives a job key from here on.
  imgcast::cli::keep_key_out_of_dumps();
  if (app.got_subcommand("replicate"))
    return replicate();
  if (app.got_subcommand("agent"))
    return agent();
  if (app.got_subcommand("hook"))
    return hook();
  if (app.got_subcommand("cache"))
    return cache();
  return demo();
}
