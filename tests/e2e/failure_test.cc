// A node that dies mid-transfer: the run fails naming it, its destination never shows a file,
// and nobody is left with a temporary file.
#include <signal.h>

#include <fstream>
#include <thread>

#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

bool has_temporary(const std::filesystem::path& dir) {
  for (const auto& name : list_dir(dir)) {
    if (name.find(".imgcast-") != std::string::npos)
      return true;
  }
  return false;
}

// The pid of the agent process of `rank`, found through /proc (it runs on this machine).
pid_t find_agent(int rank) {
  const std::string needle = fmt::format("--rank{}{}", '\0', rank);
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), {});
    cmdline.push_back('\0');
    if (cmdline.find("agent") != std::string::npos &&
        cmdline.find(needle + std::string(1, '\0')) != std::string::npos &&
        cmdline.find(IMGCAST_BINARY) != std::string::npos) {
      return static_cast<pid_t>(std::stoi(name));
    }
  }
  return -1;
}

TEST(NodeFailure, KilledAgentFailsTheRunNamingItsHostAndLeavesNoFile) {
  LocalJob job(4);
  job.log_level = "debug";
  const auto source = job.dir / "source.sif";
  write_random_file(source, 512u << 20, 5);
  // In a chain, rank 1 relays to 2 and 3: killing it cuts them off too.
  Process replicate(job.command(source, {"--topology", "chain", "--chunk-size", "256K"}));

  // Kill rank 1 once the root says data flows (its debug log), a little into the transfer.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline &&
         replicate.err_so_far().find("data flows") == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  const pid_t victim = find_agent(1);
  ASSERT_GT(victim, 0) << "rank 1's agent is not running; root said: " << replicate.err_so_far();
  ASSERT_EQ(::kill(victim, SIGKILL), 0);

  const ProcessResult result = replicate.wait(std::chrono::seconds(60));
  // The root verified its own copy, so the run is partial; rank 1 is named as failed.
  EXPECT_EQ(result.exit_code, 3) << result.err.substr(
      result.err.size() > 3000 ? result.err.size() - 3000 : 0);
  EXPECT_NE(result.err.find("127.0.0.2"), std::string::npos) << result.err;
  EXPECT_FALSE(std::filesystem::exists(job.copy(1)));
  for (int rank = 0; rank < job.nodes; ++rank) {
    // A SIGKILLed process cleans up nothing; every other node removes its temporary file.
    if (rank != 1) {
      EXPECT_FALSE(has_temporary(job.node_dir(rank))) << "rank " << rank;
    }
    // Whatever exists under the final name is complete and verified.
    if (std::filesystem::exists(job.copy(rank))) {
      EXPECT_TRUE(files_equal(source, job.copy(rank))) << "rank " << rank;
    }
  }
  // Ranks 2 and 3 hung below the dead relay: neither may claim a copy.
  EXPECT_FALSE(std::filesystem::exists(job.copy(2)));
  EXPECT_FALSE(std::filesystem::exists(job.copy(3)));
}

TEST(NodeFailure, InterruptedRootRemovesEveryTemporaryFile) {
  LocalJob job(3);
  const auto source = job.dir / "source.sif";
  write_random_file(source, 512u << 20, 6);
  Process replicate(job.command(source, {"--topology", "chain", "--chunk-size", "256K"}));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline && !has_temporary(job.node_dir(2))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(has_temporary(job.node_dir(2)));
  // Like Ctrl-C in a terminal: the whole process group gets SIGINT.
  ::kill(-replicate.pid(), SIGINT);
  const ProcessResult result = replicate.wait(std::chrono::seconds(30));
  EXPECT_NE(result.exit_code, 0);
  for (int rank = 0; rank < job.nodes; ++rank) {
    EXPECT_FALSE(has_temporary(job.node_dir(rank))) << "rank " << rank;
  }
}

}  // namespace
}  // namespace imgcast::test
