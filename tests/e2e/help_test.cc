// --help of every subcommand shows its usage and at least one example; --version and an unknown
// subcommand behave.
#include <gtest/gtest.h>

#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

class SubcommandHelp : public ::testing::TestWithParam<const char*> {};

TEST_P(SubcommandHelp, ShowsUsageOptionsAndAnExample) {
  const ProcessResult result = run({IMGCAST_BINARY, GetParam(), "--help"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("Usage:"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("Example"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(std::string("imgcast ") + GetParam()), std::string::npos) << result.out;
}

INSTANTIATE_TEST_SUITE_P(EverySubcommand, SubcommandHelp,
                         ::testing::Values("replicate", "hook", "demo", "agent", "cache"));

TEST(Help, TopLevelListsSubcommandsExamplesAndExitCodes) {
  const ProcessResult result = run({IMGCAST_BINARY, "--help"});
  EXPECT_EQ(result.exit_code, 0);
  for (const char* word : {"replicate", "hook", "demo", "Examples:", "Exit codes: 0 success"})
    EXPECT_NE(result.out.find(word), std::string::npos) << word;
}

TEST(Help, VersionAndUnknownSubcommand) {
  const ProcessResult version = run({IMGCAST_BINARY, "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("imgcast ", 0), 0u) << version.out;
  const ProcessResult unknown = run({IMGCAST_BINARY, "stage"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("imgcast: error:"), std::string::npos) << unknown.err;
}

}  // namespace
}  // namespace imgcast::test
