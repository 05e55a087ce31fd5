// How the root starts its agents: the command line of `imgcast agent` for one host over an
// ssh-compatible command, or for a whole step launcher (srun, mpirun) that starts them all.
// Pure: the AgentLauncher runs what these build. The job secret is never part of them.
#pragma once

#include <string>
#include <vector>

namespace imgcast::replicator {

struct AgentProgram {
  std::string path;               // imgcast's path on the other hosts
  std::vector<std::string> args;  // global options put before `agent` (e.g. the log level)
};

// One shell command for `RSH HOST 'command'`: "exec 'imgcast' ... agent --control 'ADDR' --rank
// R --host 'HOST'", every word quoted.
std::string agent_shell_command(const AgentProgram& program, const std::string& control_address,
                                int rank, const std::string& host);

// The whole argv of a step launcher: `step` (e.g. {"srun", "--overlap", ...}), then imgcast and
// `agent --control ADDR --rank auto --host auto --hosts h0,h1,...` (each agent finds its rank by
// its own host name in the list).
std::vector<std::string> agent_step_argv(const std::vector<std::string>& step,
                                         const AgentProgram& program,
                                         const std::string& control_address,
                                         const std::vector<std::string>& hosts);

// The argv that runs `command` (one shell command line) on `host` through `rsh`: "local" is
// /bin/sh -c on this machine; anything else is split on spaces ("ssh -o BatchMode=yes"), then
// HOST and the command are appended, the way ssh takes them. Shared by the agents' launcher and
// `imgcast cache list --hosts`, so both reach a host the same way.
// How a finished process ended, from waitpid()'s status: "exited with status N", "was killed
// by signal N". For the lines that name a host whose rsh or agent failed.
std::string describe_exit(int status);

std::vector<std::string> rsh_argv(const std::string& rsh, const std::string& host,
                                  const std::string& command);

// Quotes one word for a POSIX shell: 'it'\''s'.
std::string shell_quote(const std::string& word);

}  // namespace imgcast::replicator
