// A host whose agent cannot be started or never joins fails alone: it is named with its cause,
// the tree is planned over the hosts that joined, they finish, and the run exits 3 (0 within
// --allow-fail). An agent that exits before joining is given up at once, not after the timeout.
#include <gtest/gtest.h>

#include <fstream>
#include <utility>

#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

using namespace std::chrono_literals;

// An ssh-compatible launcher for 127.0.0.1..N: the host `dead` behaves as `how` says ("hang":
// a dead route, ssh waiting; "exit": ssh refused, status 255), every other host runs its agent
// here.
std::string write_rsh(const LocalJob& job, const std::string& dead, const std::string& how) {
  const auto rsh = job.dir / "one-dead-rsh";
  std::ofstream script(rsh);
  script << "#!/bin/sh\n"
         << "if [ \"$1\" = " << dead << " ]; then\n"
         << (how == "hang" ? "  exec sleep 600\n"
                           : "  echo 'ssh: connect to host port 22: Connection refused' >&2\n"
                             "  exit 255\n")
         << "fi\n"
         << "IFS= read -r secret\n"
         << "printf '%s\\n' \"$secret\" | exec /bin/sh -c \"$2\"\n";
  script.close();
  std::filesystem::permissions(rsh, std::filesystem::perms::owner_all);
  return rsh.string();
}

// The command's result and its wall seconds.
std::pair<ProcessResult, double> timed_run(const std::vector<std::string>& argv) {
  const auto start = std::chrono::steady_clock::now();
  ProcessResult result = run(argv, 60s);
  return {result, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

void expect_copies_but(const LocalJob& job, const std::filesystem::path& source, int dead) {
  for (int rank = 0; rank < job.nodes; ++rank) {
    SCOPED_TRACE("rank " + std::to_string(rank));
    if (rank == dead) {
      EXPECT_TRUE(list_dir(job.node_dir(rank)).empty());
    } else {
      EXPECT_TRUE(files_equal(source, job.copy(rank)));
      EXPECT_EQ(list_dir(job.node_dir(rank)), std::vector<std::string>{"image.sif"});
    }
  }
}

TEST(StartFailure, AHostThatNeverJoinsFailsAloneAndTheOthersFinish) {
  LocalJob job(4);
  job.rsh = write_rsh(job, "127.0.0.3", "hang");
  job.connect_timeout = "2";
  const auto source = job.dir / "source.sif";
  write_random_file(source, 8u << 20, 31);
  const auto [result, seconds] = timed_run(job.command(source));
  EXPECT_EQ(result.exit_code, 3) << result.err;
  EXPECT_NE(result.err.find("127.0.0.3 (timed out after 2000 ms waiting for its agent to join"),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.out.find("total: 3/4 nodes verified"), std::string::npos) << result.out;
  expect_copies_but(job, source, 2);
  // The timeout, then the transfer: not the timeout plus a wait for the hung launcher.
  EXPECT_LT(seconds, 8.0);
}

TEST(StartFailure, AnAgentThatExitsBeforeJoiningIsGivenUpAtOnceAndAllowFailCoversIt) {
  LocalJob job(4);
  job.rsh = write_rsh(job, "127.0.0.2", "exit");
  job.connect_timeout = "30";
  const auto source = job.dir / "source.sif";
  write_random_file(source, 8u << 20, 32);
  const auto [result, seconds] = timed_run(job.command(source, {"--allow-fail", "1"}));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("127.0.0.2 (rank 1) failed: its agent exited with status 255"),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("Connection refused"), std::string::npos) << result.err;
  expect_copies_but(job, source, 1);
  EXPECT_LT(seconds, 10.0) << "waited for the 30 s join timeout";
}

}  // namespace
}  // namespace imgcast::test
