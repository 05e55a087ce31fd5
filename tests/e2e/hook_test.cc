// imgcast hook on loopback: N real processes per "job", each told its node index with --rank
// (what srun / mpirun say through their variables; tests/launchers runs those for real), meeting
// through the rendezvous file, several tasks per node, a command after staging, and failures.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <thread>

#include "replicator/cache/node_cache.h"
#include "tests/e2e/harness.h"
#include "transport/unique_fd.h"

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
                                     source.string()};
    argv.insert(argv.end(), more_sources.begin(), more_sources.end());
    argv.insert(argv.end(), {job.destination(),
                                     "--rank",
                                     std::to_string(rank),
                                     "--nodes",
                                     std::to_string(job.nodes),
                                     "--job-id",
                                     job_id,
                                     "--rendezvous",
                                     (job.dir / "rdv").string(),
                                     "--timeout",
                                     timeout});
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(argv);
  }

  LocalJob job;
  std::vector<std::string> more_sources;  // after the first: SRC... DST
  std::string job_id = "hook-test-1";
  std::string timeout = "20";
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

// --cache: every node's copy goes into its cache, and the entry is in use (never evicted) for
// exactly as long as CMD runs: the pin is a flock CMD inherits.
TEST(Hook, WithTheCacheTheEntryIsInUseWhileTheCommandRuns) {
  HookJob hook(2);
  const auto source = hook.job.dir / "source.img";
  write_random_file(source, (2u << 20) + 9, 44);
  const auto release = hook.job.dir / "release";
  const auto cache = [&](int rank) { return hook.job.dir / fmt::format("cache{}", rank); };
  std::vector<std::unique_ptr<Process>> nodes;
  for (int rank = 1; rank >= 0; --rank) {
    nodes.push_back(hook.start(
        rank, source,
        {"--cache", "--cache-dir", (hook.job.dir / "cache%r").string(), "--", "sh", "-c",
         fmt::format("touch \"$IMGCAST_PATH.running\"; while [ ! -e {} ]; do sleep 0.05; done",
                     release.string())}));
  }
  for (int rank = 0; rank < 2; ++rank) {
    const auto running = hook.job.copy(rank).string() + ".running";
    for (int i = 0; i < 400 && !std::filesystem::exists(running); ++i) {
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(std::filesystem::exists(running)) << "rank " << rank;
    auto node_cache = replicator::NodeCache::open(cache(rank));
    const auto listed = node_cache.list();
    ASSERT_EQ(listed.size(), 1u) << "rank " << rank;
    EXPECT_TRUE(listed[0].in_use) << "rank " << rank;
    EXPECT_TRUE(node_cache.prune(0, std::nullopt).empty()) << "rank " << rank;
    EXPECT_TRUE(files_equal(source, hook.job.copy(rank))) << "rank " << rank;
  }
  std::ofstream(release) << "go";
  for (auto& node : nodes) {
    const ProcessResult result = node->wait(60s);
    EXPECT_EQ(result.exit_code, 0) << result.err;
  }
  for (int rank = 0; rank < 2; ++rank) {
    auto node_cache = replicator::NodeCache::open(cache(rank));
    ASSERT_EQ(node_cache.list().size(), 1u);
    EXPECT_FALSE(node_cache.list()[0].in_use) << "rank " << rank;
  }
}

// A directory source through the hook: every node gets the tree at DST.
TEST(Hook, ADirectorySourceBecomesATreeOnEveryNode) {
  HookJob hook(3);
  const auto source = hook.job.dir / "env";
  std::filesystem::create_directories(source / "lib");
  write_random_file(source / "lib" / "libx.so", (1u << 20) + 7, 42);
  std::ofstream(source / "bin") << "#!/bin/sh\n";
  std::filesystem::create_symlink("lib/libx.so", source / "link");
  std::vector<std::unique_ptr<Process>> nodes;
  for (int rank = 2; rank >= 0; --rank) nodes.push_back(hook.start(rank, source));
  for (auto& node : nodes) {
    const ProcessResult result = node->wait(60s);
    EXPECT_EQ(result.exit_code, 0) << result.err;
  }
  for (int rank = 0; rank < 3; ++rank) {
    const auto copy = hook.job.copy(rank);  // DST names the tree's directory here
    EXPECT_TRUE(files_equal(source / "lib" / "libx.so", copy / "lib" / "libx.so")) << rank;
    EXPECT_EQ(std::filesystem::read_symlink(copy / "link"), "lib/libx.so") << rank;
  }
}

// Several sources, as for replicate: one transfer, each by its last component inside DST, and
// the command after -- sees DST as IMGCAST_PATH.
TEST(Hook, SeveralSourcesGoIntoTheDirectoryDstAndTheCommandRuns) {
  HookJob hook(2);
  const auto image = hook.job.dir / "app.sif";
  write_random_file(image, (2u << 20) + 3, 45);
  const auto env = hook.job.dir / "env";
  std::filesystem::create_directories(env / "lib");
  write_random_file(env / "lib" / "libx.so", 70000, 46);
  hook.more_sources = {env.string()};
  std::vector<std::unique_ptr<Process>> nodes;
  for (int rank = 1; rank >= 0; --rank) {
    nodes.push_back(hook.start(
        rank, image,
        {"--", "sh", "-c", "cmp \"$IMGCAST_PATH/app.sif\" \"$0\" && echo SAME", image.string()}));
  }
  for (auto& node : nodes) {
    const ProcessResult result = node->wait(60s);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_NE(result.out.find("SAME"), std::string::npos) << result.out << result.err;
  }
  for (int rank = 0; rank < 2; ++rank) {
    const auto copy = hook.job.copy(rank);  // DST: the directory holding both
    EXPECT_TRUE(files_equal(image, copy / "app.sif")) << rank;
    EXPECT_TRUE(files_equal(env / "lib" / "libx.so", copy / "env" / "lib" / "libx.so")) << rank;
  }
}

TEST(Hook, OneWordBeforeTheCommandOrSeveralSourcesWithTheCacheAreUsageErrors) {
  TempDir dir;
  ProcessResult result = run({IMGCAST_BINARY, "hook", "/etc/hostname", "--rank", "0", "--nodes",
                              "1", "--", "true"}, 10s);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("imgcast hook SRC... DST [-- CMD ARGS...]"), std::string::npos)
      << result.err;
  result = run({IMGCAST_BINARY, "hook", "/etc/hostname", "/etc/hosts", (dir / "x").string(),
                "--cache", "--rank", "0", "--nodes", "1"}, 10s);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("--cache takes one image file"), std::string::npos) << result.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "x"));
}

// A node whose hook never starts (its task failed to launch) fails alone: the root plans over
// the others at the timeout, they finish, and the root's node exits 3.
TEST(Hook, ANodeThatNeverStartsFailsAloneAtTheTimeout) {
  HookJob hook(4);
  hook.timeout = "3";
  const auto source = hook.job.dir / "source.img";
  write_random_file(source, (4u << 20) + 5, 43);
  std::vector<std::unique_ptr<Process>> nodes;
  for (int rank : {3, 1, 0})  // node 2 never starts
    nodes.push_back(hook.start(rank, source));
  const ProcessResult root = nodes.back()->wait(60s);
  EXPECT_EQ(root.exit_code, 3) << root.err;
  EXPECT_NE(root.err.find("rank 2"), std::string::npos) << root.err;
  for (std::size_t i = 0; i + 1 < nodes.size(); ++i) {
    const ProcessResult result = nodes[i]->wait(60s);
    EXPECT_EQ(result.exit_code, 0) << result.err;
  }
  for (int rank : {0, 1, 3})
    EXPECT_TRUE(files_equal(source, hook.job.copy(rank))) << "rank " << rank;
  EXPECT_FALSE(std::filesystem::exists(hook.job.copy(2)));
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

// Files another user (uid 65534) made first in DST's directory, a 1777 one like /tmp: the
// tests run as root, so they are created and then given away.
constexpr uid_t kNobody = 65534;

void plant(const std::filesystem::path& path, const std::string& text, mode_t mode = 0600) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  ASSERT_EQ(::chown(path.c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

struct StickyHook : HookJob {
  StickyHook() : HookJob(1) {
    std::filesystem::permissions(job.node_dir(0), std::filesystem::perms(01777));
    write_random_file(source, 1u << 20, 44);
  }
  std::filesystem::path beside(const char* suffix) const {
    return job.node_dir(0) / (std::string(".image.sif") + suffix);
  }
  // The command prints whether it saw the true bytes.
  ProcessResult run_hook() const {
    return start(0, source,
                 {"--", "sh", "-c",
                  "cmp -s \"$IMGCAST_PATH\" \"$0\" && echo SAME || "
                  "echo OTHER",
                  source.string()})
        ->wait(60s);
  }
  std::filesystem::path source = job.dir / "source.img";
};

TEST(Hook, AStateFileAnotherUserPlantedIsRefusedAndTheCommandNeverRuns) {
  StickyHook hook;
  plant(hook.job.copy(0), "attacker's image", 0644);
  plant(hook.beside(".imgcast-state"), "staged " + hook.job_id + "\n");
  const ProcessResult result = hook.run_hook();
  EXPECT_EQ(result.exit_code, 4) << result.err;
  EXPECT_NE(result.err.find("belongs to uid 65534"), std::string::npos) << result.err;
  EXPECT_EQ(result.out.find("SAME"), std::string::npos);
  EXPECT_EQ(result.out.find("OTHER"), std::string::npos) << "CMD ran on the planted file";
}

TEST(Hook, OurStagedStateCountsOnlyForOurOwnCopy) {
  StickyHook hook;
  // Our own state file says staged (a guessable job id), but DST is someone else's file: the
  // node stages again and the command sees the true bytes.
  std::ofstream(hook.beside(".imgcast-state")) << "staged " << hook.job_id << "\n";
  std::filesystem::permissions(hook.beside(".imgcast-state"), std::filesystem::perms(0600));
  plant(hook.job.copy(0), "attacker's image", 0644);
  const ProcessResult result = hook.run_hook();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("SAME"), std::string::npos) << result.out << result.err;
  EXPECT_TRUE(files_equal(hook.source, hook.job.copy(0)));
  // And a second call in the same job now finds our copy staged: no transfer, the same bytes.
  const ProcessResult again = hook.run_hook();
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("SAME"), std::string::npos) << again.out << again.err;
}

TEST(Hook, AStateFileSymlinkIsRefusedAndItsTargetKeepsItsBytes) {
  StickyHook hook;
  const auto target = hook.job.dir / "precious";
  std::ofstream(target) << "precious";
  std::filesystem::create_symlink(target, hook.beside(".imgcast-state"));
  ASSERT_EQ(::lchown(hook.beside(".imgcast-state").c_str(), kNobody, kNobody), 0);
  const ProcessResult result = hook.run_hook();
  EXPECT_EQ(result.exit_code, 4) << result.err;
  EXPECT_NE(result.err.find("symbolic link"), std::string::npos) << result.err;
  std::ifstream in(target);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "precious");
}

TEST(Hook, ALockAnotherUserHoldsFailsAtOnce) {
  StickyHook hook;
  plant(hook.beside(".imgcast-lock"), "");
  // Held all along (as its owner could): we must not wait --timeout (20 s) for it.
  const transport::UniqueFd held(::open(hook.beside(".imgcast-lock").c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(held.valid());
  ASSERT_EQ(::flock(held.get(), LOCK_EX), 0);
  const auto started = std::chrono::steady_clock::now();
  const ProcessResult result = hook.run_hook();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(result.exit_code, 4) << result.err;
  EXPECT_NE(result.err.find("refusing the node file"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("belongs to uid 65534"), std::string::npos) << result.err;
  EXPECT_EQ(result.out.find("SAME"), std::string::npos);
}

}  // namespace
}  // namespace imgcast::test
