// imgcast demo: the embedded default. Makes a sample image, starts N local nodes (real agent
// processes on 127.0.0.1, 127.0.0.2, ...), each with its own destination directory, replicates,
// checks every copy byte for byte against the source, and prints what happened.
#include <fmt/format.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/context_factory.h"
#include "cli/logging.h"
#include "cli/option_checks.h"
#include "cli/run_guard.h"
#include "cli/sample_image.h"
#include "cli/parse.h"
#include "replicator/session/replicate.h"

namespace imgcast::cli {

namespace fs = std::filesystem;

namespace {
struct DemoArgs {
  int nodes = 4;
  std::string size = "256M";
  std::string chunk_size = "auto";
  std::string topology = "auto";
  std::string dir;
  bool keep = false;
};

// A scratch directory that is removed unless the user asked to keep it.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& parent) {
    const fs::path base = parent.empty() ? fs::temp_directory_path() : fs::path(parent);
    std::string pattern = (base / "imgcast-demo-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw replicator::InputError(fmt::format(
          "cannot create a scratch directory in {}: pass --dir with a writable directory",
          base.string()));
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    if (!keep_) {
      std::error_code ignored;
      fs::remove_all(path_, ignored);
    }
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const noexcept { return path_; }
  void keep() noexcept { keep_ = true; }

 private:
  fs::path path_;
  bool keep_ = false;
};
}  // namespace

Run add_demo_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Replicate a sample image to several local nodes and check every copy");
  cmd->footer("Example:\n  imgcast demo --nodes 8 --size 1G --topology chain");
  cmd->add_option("--nodes", args->nodes, "Local nodes, the root included")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--size", args->size, "Sample image size")->capture_default_str();
  cmd->add_option("--chunk-size", args->chunk_size, "Chunk size")
      ->capture_default_str()
      ->check(chunk_size_check());
  cmd->add_option("--topology", args->topology, "auto, binomial, chain, kary:K or twotree")
      ->capture_default_str();
  cmd->add_option("--dir", args->dir, "Where to put the scratch directory (default: $TMPDIR)");
  cmd->add_flag("--keep", args->keep, "Keep the sample image and the copies");

  return [args, &global]() {
    setup_logging(hostname(), 0, global.level());
    return run_guarded([&] {
      const std::uint64_t size = parse_size(args->size, "--size");
      ScratchDir scratch(args->dir);
      if (args->keep) {
        scratch.keep();
      }
      const SampleImage image = make_sample_image(scratch.path(), size);
      std::cout << fmt::format("imgcast demo: {} image of {:.1f} MB ({}), {} local nodes\n",
                               image.kind, fs::file_size(image.path) / 1e6, image.path.string(),
                               args->nodes);

      replicator::ReplicateOptions options;
      options.source = image.path;
      for (int rank = 0; rank < args->nodes; ++rank) {
        // Every node is its own loopback address and its own destination directory.
        options.hosts.push_back(fmt::format("127.0.0.{}", rank + 1));
        fs::create_directories(scratch.path() / fmt::format("node{}", rank));
      }
      options.destination = (scratch.path() / "node%r" / "image").string();
      options.rsh = "local";
      options.agent_program = self_path();
      options.agent_args = global.agent_args();
      options.bind_any = global.bind == "any";
      // Loopback links: far faster than a NIC, so the model assumes 20 Gbit/s.
      apply_plan_options(args->topology, args->chunk_size, 20000, 50, options);
      const auto start = std::chrono::steady_clock::now();
      const replicator::Report report = replicator::replicate(options, context_factory());
      // The figure a job script pays: the whole command, agents' start and goodbye included.
      const double whole = std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                               .count();
      report.print(std::cout);
      std::cout << fmt::format("whole command: {:.3f}s (setup {:.3f}s, transfer {:.3f}s)\n", whole,
                               report.setup_seconds, report.transfer_seconds);

      // The demo checks for itself, byte for byte, what the nodes verified by digest.
      int identical = 0;
      for (const auto& node : report.nodes) {
        if (node.verified && same_contents(image.path, node.destination)) {
          ++identical;
        }
      }
      std::cout << fmt::format("byte-for-byte check: {}/{} copies identical to the source\n",
                               identical, report.nodes.size());
      if (args->keep) {
        std::cout << "kept: " << scratch.path().string() << "\n";
      }
      if (identical != static_cast<int>(report.nodes.size())) {
        const int code = report_exit(report);
        return code == 0 ? 2 : code;  // verified by digest yet different: a transfer failure
      }
      return 0;
    });
  };
}

}  // namespace imgcast::cli
