// A root whose host goes silent (powered off, its link cut: no FIN, no RST ever arrives) on the
// emulated cluster: every agent notices through its control connection's dead-peer limit
// (keepalive probes, TCP_USER_TIMEOUT), removes its staging file and exits, before the plan and
// mid-transfer alike, instead of waiting without end (before the plan) or for the stall timeout.
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "tests/e2e/harness.h"
#include "tests/support/proc_stats.h"

namespace imgcast::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const fs::path kNodeRoot = "/dev/shm/imgcast-cluster";
// The bridge's end of h0's link (perf/cluster: PREFIX v NAME).
const char* const kRootLink = "imgc0vh0";

class SilentHostTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    (void)run({CLUSTER_SCRIPT, "down"});
    // 100 Mbit/s: a 48 MiB image is still on its way when the link is cut.
    const ProcessResult up = run({CLUSTER_SCRIPT, "up", "4", "100"}, std::chrono::seconds(60));
    cluster_up_ = up.exit_code == 0;
    why_ = up.err;
  }
  static void TearDownTestSuite() { (void)run({CLUSTER_SCRIPT, "down"}); }
  void SetUp() override {
    if (!cluster_up_)
      GTEST_SKIP() << "cannot build the emulated cluster here (needs root and iproute2): " << why_;
    for (int h = 1; h < 4; ++h)
      fs::remove(kNodeRoot / ("h" + std::to_string(h)) / "image.sif");
  }
  void TearDown() override { (void)run({"ip", "link", "set", kRootLink, "up"}); }

  // The agents of this test's job: imgcast processes in another network namespace.
  static std::vector<pid_t> agents() {
    std::vector<pid_t> out;
    struct stat own {};
    (void)::stat("/proc/self/ns/net", &own);
    for (const auto& entry : fs::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos)
        continue;
      const std::string cmdline = read_proc_file(entry.path() / "cmdline");
      struct stat net {};
      if (cmdline.rfind(IMGCAST_BINARY, 0) == 0 &&
          cmdline.find(std::string("agent") + '\0') != std::string::npos &&
          ::stat((entry.path() / "ns/net").c_str(), &net) == 0 && net.st_ino != own.st_ino)
        out.push_back(static_cast<pid_t>(std::stoi(name)));
    }
    return out;
  }

  // Cuts h0's link once `ready` holds, and returns how long the agents took to exit after it.
  template <typename Ready>
  std::chrono::milliseconds cut_root_and_time_agents(Process& root, Ready ready) {
    const auto give_up = Clock::now() + std::chrono::seconds(30);
    while (!ready() && Clock::now() < give_up)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_TRUE(ready()) << root.err_so_far();
    EXPECT_EQ(agents().size(), 3u) << root.err_so_far();
    const ProcessResult cut = run({"ip", "link", "set", kRootLink, "down"});
    EXPECT_EQ(cut.exit_code, 0) << cut.err;
    const auto cut_at = Clock::now();
    while (!agents().empty() && Clock::now() - cut_at < std::chrono::seconds(40))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - cut_at);
    EXPECT_TRUE(agents().empty()) << "agents still running 40 s after their root went silent";
    for (int h = 1; h < 4; ++h) {
      const fs::path node = kNodeRoot / ("h" + std::to_string(h));
      EXPECT_FALSE(has_staging_file(node)) << node;
      EXPECT_FALSE(fs::exists(node / "image.sif")) << node;
    }
    std::cerr << "agents gone " << took.count() << " ms after their root's host went silent\n";
    return took;
  }

  static bool cluster_up_;
  static std::string why_;
};
bool SilentHostTest::cluster_up_ = false;
std::string SilentHostTest::why_;

std::vector<std::string> replicate_command(const fs::path& source, const std::string& hosts,
                                           const std::string& rsh) {
  return {CLUSTER_SCRIPT, "exec",   "h0",   IMGCAST_BINARY, "--log-level",
          "info",         "replicate", source.string(), "/mnt/imgcast-node/image.sif",
          "--hosts",      hosts,       "--rsh", rsh,    "--connect-timeout", "90"};
}

TEST_F(SilentHostTest, AgentsLeaveWhenTheRootsHostGoesSilentBeforeThePlan) {
  TempDir dir;
  const fs::path source = dir / "image.sif";
  write_random_file(source, 1u << 20, 5);
  // A fifth host whose agent never starts keeps the root waiting for joins: the three that
  // joined wait for a probe that will never come.
  const fs::path rsh = dir / "rsh";
  {
    std::ofstream script(rsh);
    script << "#!/bin/sh\ncase \"$1\" in 10.77.0.9) exec sleep 600;; esac\nexec "
           << CLUSTER_SCRIPT << " rsh \"$@\"\n";
  }
  fs::permissions(rsh, fs::perms::owner_all);
  Process root(replicate_command(source, "10.77.0.1,10.77.0.2,10.77.0.3,10.77.0.4,10.77.0.9",
                                 rsh.string()));
  // Joined: their processes are up and have had time to prove themselves.
  auto seen = Clock::time_point{};
  const auto took = cut_root_and_time_agents(root, [&] {
    if (agents().size() != 3)
      return false;
    if (seen == Clock::time_point{})
      seen = Clock::now();
    return Clock::now() - seen > std::chrono::seconds(2);
  });
  EXPECT_LT(took, std::chrono::seconds(20));
}

TEST_F(SilentHostTest, AgentsLeaveAndCleanUpWhenTheRootsHostGoesSilentMidTransfer) {
  TempDir dir;
  const fs::path source = dir / "image.sif";
  write_random_file(source, 48u << 20, 6);
  Process root(replicate_command(source, "10.77.0.1,10.77.0.2,10.77.0.3,10.77.0.4",
                                 std::string(CLUSTER_SCRIPT) + " rsh"));
  // Data flows once the last host's staging file exists (it is created at the probe, sized at
  // once and filled from the start over a 100 Mbit/s chain: ~4 s per copy).
  const auto took = cut_root_and_time_agents(root, [&] {
    return agents().size() == 3 && has_staging_file(kNodeRoot / "h3") &&
           root.err_so_far().find("take part in the transfer") != std::string::npos;
  });
  EXPECT_LT(took, std::chrono::seconds(20));
}

}  // namespace
}  // namespace imgcast::test
