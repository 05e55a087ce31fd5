// Scale limits: a root serving hundreds of agents holds one descriptor per agent. Under the
// common soft limit (here 128, far below what 240 agents need) it raises its own soft limit to
// the hard one and every node verifies; when even the hard limit is too small it says so in one
// line before any agent starts, instead of every node failing mid-setup.
#include <sys/resource.h>

#include <cstdlib>

#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

constexpr int kNodes = 241;  // 240 agents on 127.0.0.2..241, each its own loopback "host"

bool have_prlimit() { return std::system("command -v prlimit > /dev/null") == 0; }

std::size_t lines_in(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST(DescriptorLimit, HundredsOfAgentsVerifyUnderALowSoftLimit) {
  if (!have_prlimit())
    GTEST_SKIP() << "no prlimit (util-linux) to start the root under a descriptor limit";
  rlimit own{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &own), 0);
  if (own.rlim_max != RLIM_INFINITY && own.rlim_max < 512)
    GTEST_SKIP() << "the hard limit here (" << own.rlim_max << ") cannot hold " << kNodes
                 << " nodes";
  LocalJob job(kNodes);
  job.log_level = "warn";
  const auto source = job.dir / "source.sif";
  write_random_file(source, (1u << 20) + 123, 41);
  std::vector<std::string> argv = job.command(source, {"--chunk-size", "64K"});
  const std::string hard =
      own.rlim_max == RLIM_INFINITY ? "unlimited" : std::to_string(own.rlim_max);
  argv.insert(argv.begin(), {"prlimit", "--nofile=128:" + hard, "--"});
  const ProcessResult result = run(argv, std::chrono::seconds(60));
  ASSERT_EQ(result.exit_code, 0) << result.err.substr(0, 4000);
  EXPECT_NE(result.out.find(fmt::format("total: {}/{} nodes verified", kNodes, kNodes)),
            std::string::npos)
      << result.out.substr(result.out.size() > 600 ? result.out.size() - 600 : 0);
  job.expect_all_copies_of(source);
  // Neither a descriptor shortage nor its aftermath is misreported as a peer's bad message.
  EXPECT_EQ(result.err.find("malformed"), std::string::npos) << result.err.substr(0, 4000);
  EXPECT_EQ(result.err.find("integrity"), std::string::npos) << result.err.substr(0, 4000);
}

TEST(DescriptorLimit, AHardLimitTooSmallFailsInOneLineBeforeAnyAgentStarts) {
  if (!have_prlimit())
    GTEST_SKIP() << "no prlimit (util-linux) to start the root under a descriptor limit";
  LocalJob job(kNodes);
  job.log_level = "warn";  // what an admin sees by default
  const auto source = job.dir / "source.sif";
  write_random_file(source, 1u << 20, 42);
  std::vector<std::string> argv = job.command(source);
  argv.insert(argv.begin(), {"prlimit", "--nofile=128:128", "--"});
  const auto start = std::chrono::steady_clock::now();
  const ProcessResult result = run(argv, std::chrono::seconds(30));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // 1, not 2: nothing was attempted, and only the job's limits (the admin's) can change it.
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_EQ(lines_in(result.err), 1u) << result.err;
  EXPECT_NE(result.err.find(fmt::format("a job of {} nodes needs about", kNodes)),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("the hard limit (ulimit -Hn) allows 128"), std::string::npos)
      << result.err;
  for (int rank = 0; rank < kNodes; ++rank) {
    ASSERT_TRUE(list_dir(job.node_dir(rank)).empty()) << "rank " << rank << " was written to";
  }
}

}  // namespace
}  // namespace imgcast::test
