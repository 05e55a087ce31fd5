// The agents' command lines: every word quoted for the remote shell, the secret never in them.
#include "replicator/session/agent_command_line.h"

#include <gtest/gtest.h>

namespace imgcast::replicator {
namespace {

TEST(AgentCommandLine, OneHostOverRshQuotesEveryWord) {
  const AgentProgram program{"/opt/img cast/bin/imgcast", {"--log-level", "debug"}};
  EXPECT_EQ(agent_shell_command(program, "root:4000", 3, "node'3"),
            "exec '/opt/img cast/bin/imgcast' '--log-level' 'debug' agent --control 'root:4000' "
            "--rank 3 --host 'node'\\''3'");
}

TEST(AgentCommandLine, AStepLauncherStartsEveryAgentWhichFindsItsRankByName) {
  const AgentProgram program{"imgcast", {}};
  const std::vector<std::string> argv =
      agent_step_argv({"srun", "--overlap"}, program, "n0:4000", {"n0", "n1", "n2"});
  const std::vector<std::string> expected = {"srun",      "--overlap", "imgcast", "agent",
                                             "--control", "n0:4000",   "--rank",  "auto",
                                             "--host",    "auto",      "--hosts", "n0,n1,n2"};
  EXPECT_EQ(argv, expected);
}

TEST(AgentCommandLine, ShellQuoteSurvivesQuotes) {
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
}

}  // namespace
}  // namespace imgcast::replicator
