// imgcast hook on loopback: N real processes per "job", each told its node index with --rank
// (what srun / mpirun say through their variables; tests/launchers runs those for real), meeting
// through the rendezvous file, several tasks per node, a command after staging, and failures.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <memory>

#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

using namespace std::chrono_literals;

struct HookJob {
  explicit HookJob(int nodes) : job(nodes) { std::filesystem::create_directories(job.dir / "rdv"); }

  // Node `rank`'s hook process; `extra` after the options (e.g. "--", "sh", "-c", ...).
  std::unique_ptr<Process> start(int rank, const std::filesystem::path& source,
                                 std::vector<std::string> extra = {}) const {
    std::vector<std::string> argv = {IMGCAST_BINARY,
                                     "-q",
                                     "hook",
                                     source.string(),
                                     job.destination(),
                                     "--rank",
                                     std::to_string(rank),
                                     "--nodes",
                                     std::to_string(job.nodes),
                                     "--job-id",
                                     job_id,
                                     "--rendezvous",
                                     (job.dir / "rdv").string(),
                                     "--timeout",
                                     "20"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(argv);
  }

  LocalJob job;
  std::string job_id = "hook-test-1";
};

TEST(Hook, EveryNodeGetsAVerifiedCopyAndTheRendezvousIsGone) {
  HookJob hook(4);
  const auto source = hook.job.dir / "source.img";
  write_random_file(source, (8u << 20) + 3, 41);
  std::vector<std::unique_ptr<Process>> nodes;
  for (int rank = 3; rank >= 0; --rank)  // the root last: the others wait for it
    nodes.push_back(hook.start(rank, source));
  for (auto& node : nodes) {
    const ProcessResult result = node->wait(60s);
    EXPECT_EQ(result.exit_code, 0) << result.err;
  }
  for (int rank = 0; rank < 4; ++rank) {
    EXPECT_TRUE(files_equal(source, hook.job.copy(rank))) << "rank " << rank;
    // The copy, and the node's lock and state files beside it; no temporary file.
    EXPECT_EQ(list_dir(hook.job.node_dir(rank)),
              (std::vector<std::string>{".image.sif.imgcast-lock", ".image.sif.imgcast-state",
                                        "image.sif"}));
  }
  EXPECT_TRUE(list_dir(hook.job.dir / "rdv").empty());
}

TEST(Hook, SeveralTasksPerNodeMakeOneTransferAndRunTheCommand) {
  HookJob hook(2);
  const auto source = hook.job.dir / "source.img";
  write_random_file(source, 3u << 20, 42);
  std::vector<std::unique_ptr<Process>> tasks;
  for (int task = 0; task < 3; ++task) {
    for (int rank = 0; rank < 2; ++rank) {
      tasks.push_back(hook.start(
          rank, source,
          {"--", "sh", "-c", "cmp \"$IMGCAST_PATH\" \"$0\" && echo SAME", source.string()}));
    }
  }
  int same = 0;
  int reports = 0;
  for (auto& task : tasks) {
    const ProcessResult result = task->wait(60s);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    same += result.out.find("SAME") != std::string::npos;
    reports += result.err.find("nodes verified") != std::string::npos;
  }
  EXPECT_EQ(same, 6);
  EXPECT_EQ(reports, 0);  // -q
  // A second call in the same job: already staged, nothing to wait for (no root runs).
  const ProcessResult again = hook.start(1, source)->wait(10s);
  EXPECT_EQ(again.exit_code, 0) << again.err;
}

TEST(Hook, AMissingSourceFailsEveryNodeAtOnce) {
  HookJob hook(3);
  const auto missing = hook.job.dir / "missing.img";
  auto agent1 = hook.start(1, missing);
  auto agent2 = hook.start(2, missing);
  const ProcessResult root = hook.start(0, missing)->wait(30s);
  EXPECT_EQ(root.exit_code, 1) << root.err;
  EXPECT_NE(root.err.find("does not exist"), std::string::npos) << root.err;
  for (auto* agent : {agent1.get(), agent2.get()}) {
    const ProcessResult result = agent->wait(10s);  // well before --timeout 20
    EXPECT_FALSE(result.timed_out);
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_NE(result.err.find("node 0 failed before the transfer"), std::string::npos)
        << result.err;
  }
  for (int rank = 0; rank < 3; ++rank)
    EXPECT_FALSE(std::filesystem::exists(hook.job.copy(rank)));
}

TEST(Hook, NoLauncherAndNoOptionsSaysWhatToPass) {
  TempDir dir;
  const ProcessResult result =
      run({IMGCAST_BINARY, "hook", "/etc/hostname", (dir / "x").string()}, 10s);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("pass --rank, --nodes and --job-id"), std::string::npos) << result.err;
}

TEST(Hook, ARendezvousOthersCouldReadIsRefused) {
  HookJob hook(2);
  const auto source = hook.job.dir / "source.img";
  write_random_file(source, 1000, 43);
  // Someone planted a world-readable rendezvous file: node 1 must not join it.
  auto root = hook.start(0, source);
  std::filesystem::path planted;
  for (int i = 0; i < 500 && planted.empty(); ++i) {
    for (const auto& entry : std::filesystem::directory_iterator(hook.job.dir / "rdv")) {
      // Only the published file, not node 0's temporary one (renamed over it a moment later).
      if (entry.path().extension() != ".tmp")
        planted = entry.path();
    }
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(planted.empty());
  std::filesystem::permissions(planted, std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  const ProcessResult agent = hook.start(1, source)->wait(30s);
  EXPECT_EQ(agent.exit_code, 4) << agent.err;
  EXPECT_NE(agent.err.find("refusing it"), std::string::npos) << agent.err;
}

}  // namespace
}  // namespace imgcast::test
