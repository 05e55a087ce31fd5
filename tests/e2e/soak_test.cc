// Soak: 100 back-to-back replications of a small image to 4 local nodes. Every run must verify,
// and afterwards nothing may be left behind: no temporary files, no stray agent processes, and
// this (long-lived) test process must not have grown its open file descriptors.
#include <unistd.h>

#include <fstream>

#include "tests/e2e/harness.h"
#include "tests/support/proc_stats.h"

namespace imgcast::test {
namespace {

int open_fds() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++count;
  }
  return count;
}

// Processes still carrying this test's marker in their environment (agents inherit it from the
// root), so agents of other tests running in parallel do not count.
int processes_with(const std::string& marker) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string environ = read_proc_file(entry.path() / "environ");
    if (environ.find(marker) != std::string::npos) {
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
  const std::string marker = "IMGCAST_SOAK_MARKER=" + std::to_string(::getpid());
  int failures = 0;
  for (int run_index = 0; run_index < 100; ++run_index) {
    for (int rank = 0; rank < job.nodes; ++rank) {
      std::filesystem::remove(job.copy(rank));
    }
    const ProcessResult result =
        run(job.command(source, {"--chunk-size", "64K"}), std::chrono::seconds(60), {marker});
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
  EXPECT_EQ(processes_with(marker), 0) << "agents or roots of the soak are still running";
}

}  // namespace
}  // namespace imgcast::test
