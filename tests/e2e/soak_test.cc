// Soak: 100 back-to-back replications of a small image to 4 local nodes. Every run must verify,
// and afterwards nothing may be left behind: no temporary files, no stray agent processes, and
// this (long-lived) test process must not have grown its open file descriptors.
#include <fstream>

#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

int open_fds() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++count;
  }
  return count;
}

int running_agents() {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), {});
    if (cmdline.find(IMGCAST_BINARY) != std::string::npos &&
        cmdline.find(std::string("agent\0", 6)) != std::string::npos) {
      ++count;
    }
  }
  return count;
}

TEST(Soak, HundredBackToBackReplicationsLeaveNothingBehind) {
  LocalJob job(4);
  const auto source = job.dir / "source.sif";
  write_random_file(source, (1u << 20) + 77, 3);
  const int fds_before = open_fds();
  int failures = 0;
  for (int run_index = 0; run_index < 100; ++run_index) {
    for (int rank = 0; rank < job.nodes; ++rank) {
      std::filesystem::remove(job.copy(rank));
    }
    const ProcessResult result = run(job.command(source, {"--chunk-size", "64K"}));
    if (result.exit_code != 0) {
      ++failures;
      ADD_FAILURE() << "run " << run_index << " failed: " << result.err;
      continue;
    }
    for (int rank = 0; rank < job.nodes; ++rank) {
      ASSERT_EQ(list_dir(job.node_dir(rank)), std::vector<std::string>{"image.sif"})
          << "run " << run_index << " rank " << rank;
    }
  }
  EXPECT_EQ(failures, 0);
  job.expect_all_copies_of(source);
  EXPECT_EQ(open_fds(), fds_before);
  EXPECT_EQ(running_agents(), 0);
}

}  // namespace
}  // namespace imgcast::test
