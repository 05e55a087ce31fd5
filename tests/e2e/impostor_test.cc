// A peer without the job key on the root's control port: garbage, a made-up job id, and the real
// job id with a made-up proof are each refused and logged with the peer's address, and the
// transfer goes on to a verified copy everywhere.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <thread>

#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

using namespace std::chrono_literals;

TEST(Impostor, IsRefusedAndTheTransferGoesOn) {
  LocalJob job(2);
  job.rsh = LATE_RSH;
  const auto source = job.dir / "source.sif";
  write_random_file(source, 2u << 20, 71);
  const std::string record = (job.dir / "record").string();
  Process root(job.command(source), {"IMGCAST_TEST_RECORD=" + record, "IMGCAST_TEST_DELAY=5"});
  // The agent's command line holds the control address; its secret line the job id.
  const std::string command_file = record + ".127.0.0.2";
  for (int i = 0; i < 200 && !std::filesystem::exists(command_file); ++i)
    std::this_thread::sleep_for(10ms);
  std::ifstream command_in(command_file);
  std::string command((std::istreambuf_iterator<char>(command_in)), {});
  std::smatch match;
  ASSERT_TRUE(std::regex_search(command, match, std::regex("--control '([^']+)'"))) << command;
  std::ifstream job_in(command_file + ".job");
  std::string job_id;
  job_in >> job_id;

  const ProcessResult impostor = run({IMPOSTOR, match[1].str(), job_id}, 30s);
  EXPECT_EQ(impostor.exit_code, 0) << impostor.out << impostor.err;
  EXPECT_NE(impostor.out.find("made-up proof: refused"), std::string::npos) << impostor.out;

  const ProcessResult result = root.wait(60s);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  job.expect_all_copies_of(source);
  // Each refusal is logged with the peer's address.
  EXPECT_NE(result.err.find("refused control connection from 127.0.0.1:"), std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("failed authentication"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace imgcast::test
