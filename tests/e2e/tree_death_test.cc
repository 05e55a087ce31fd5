// A tree run whose agent is SIGKILLed while it builds its staging directory: a killed process
// cleans up nothing, so `.DST.imgcast-JOB.tmp/` stays, half-built, until the next run into that
// node's directory, whose sweep takes the directory's free lock and removes it.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "tests/e2e/agent_processes.h"
#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> tree_run(const LocalJob& job, const fs::path& source) {
  return {IMGCAST_BINARY,
          "--log-level",
          "info",
          "replicate",
          source.string(),
          (job.dir / "node%r" / "dst").string(),
          "--hosts",
          host_list(job.nodes),
          "--rsh",
          "local",
          "--connect-timeout",
          "20",
          "--stall-timeout",
          "20"};
}

// The staging directory being built in `dir` (not the stream's staging file beside it).
std::optional<std::string> staging_directory(const fs::path& dir) {
  for (const std::string& name : list_dir(dir)) {
    if (name.starts_with(".dst.imgcast-") && name.ends_with(".tmp") &&
        fs::is_directory(fs::symlink_status(dir / name))) {
      return name;
    }
  }
  return std::nullopt;
}

TEST(TreeDeath, AnAgentKilledWhileBuildingItsTreeLeavesNothingAfterTheNextRun) {
  LocalJob job(3);
  const fs::path source = job.dir / "src";
  // 20,000 small files: building them takes long enough (hundreds of ms even on tmpfs) for the
  // kill to land while the staging directory is being filled, not after it was placed.
  for (int d = 0; d < 50; ++d) {
    const fs::path sub = source / fmt::format("d{:02}", d);
    fs::create_directories(sub);
    for (int f = 0; f < 400; ++f) {
      std::ofstream(sub / fmt::format("f{:03}", f)) << d << ' ' << f;
    }
  }
  constexpr int kVictim = 2;
  {
    Process replicate(tree_run(job, source));
    pid_t agent = -1;
    std::optional<std::string> staging;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!staging && std::chrono::steady_clock::now() < deadline) {
      if (agent <= 0)
        agent = find_agent(kVictim, replicate.pid());
      if (agent > 0)
        staging = staging_directory(job.node_dir(kVictim));
      if (!staging)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ASSERT_GT(agent, 0) << replicate.err_so_far();
    ASSERT_TRUE(staging) << replicate.err_so_far();
    ASSERT_EQ(::kill(agent, SIGKILL), 0);
    const ProcessResult result = replicate.wait(std::chrono::seconds(60));
    EXPECT_NE(result.exit_code, 0) << result.err;
    // Nobody was left to remove it: the half-built tree stays, unlocked.
    ASSERT_TRUE(fs::is_directory(fs::symlink_status(job.node_dir(kVictim) / *staging)))
        << "the kill came after the tree was placed: " << list_dir(job.node_dir(kVictim)).size()
        << " entries in its directory";
  }
  const ProcessResult again = run(tree_run(job, source));
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("removed stale staging directory " + job.node_dir(kVictim).string()),
            std::string::npos)
      << again.err;
  for (int rank = 0; rank < job.nodes; ++rank) {
    EXPECT_EQ(list_dir(job.node_dir(rank)), std::vector<std::string>{"dst"}) << "rank " << rank;
    EXPECT_EQ(fs::exists(job.node_dir(rank) / "dst" / "d49" / "f399"), true) << "rank " << rank;
  }
}

}  // namespace
}  // namespace imgcast::test
