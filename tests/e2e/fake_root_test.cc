// A "root" without the job key, speaking the real wire format: it skips the challenge and sends
// a Probe, a Plan, a Finish and a Bye that would replace a user's file with an empty 0666 one.
// The agent must act on none of them: it refuses the root (exit 4, one line naming it) and the
// file is untouched.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

using namespace std::chrono_literals;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(FakeRoot, AnAgentActsOnNothingBeforeTheRootProvesItself) {
  TempDir dir;
  const auto victim = dir / "bashrc";
  std::ofstream(victim) << "the user's own file\n";
  ::chmod(victim.c_str(), 0600);
  const auto address_file = dir / "address";
  Process fake({FAKE_ROOT, victim.string(), address_file.string()});
  for (int i = 0; i < 300 && read_file(address_file).empty(); ++i)
    std::this_thread::sleep_for(10ms);
  const std::string address = read_file(address_file);
  ASSERT_FALSE(address.empty());

  const std::string secret =
      "IMGCAST1 " + std::string(32, 'a') + " " + std::string(64, 'b') + " tcp";
  const ProcessResult agent =
      run({IMGCAST_BINARY, "agent", "--control", address, "--rank", "1", "--host", "127.0.0.1",
           "--connect-timeout", "5"},
          30s, {"IMGCAST_JOB_SECRET=" + secret});
  const ProcessResult root = fake.wait(30s);

  EXPECT_EQ(agent.exit_code, 4) << agent.err << root.err;
  EXPECT_NE(agent.err.find("before proving it holds the job key"), std::string::npos)
      << agent.err;
  // It never answered the probe: nothing was staged, checked or reserved for the fake root.
  EXPECT_EQ(root.err.find("got Probed"), std::string::npos) << root.err;
  EXPECT_EQ(read_file(victim), "the user's own file\n");
  struct stat st {};
  ASSERT_EQ(::stat(victim.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // Nothing staged beside it either.
  EXPECT_EQ(list_dir(dir.path()), (std::vector<std::string>{"address", "bashrc"}));
}

}  // namespace
}  // namespace imgcast::test
