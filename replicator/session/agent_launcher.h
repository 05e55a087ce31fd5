// AgentLauncher: starts one `imgcast agent` per remote host with an ssh-compatible command
// (`RSH HOST 'command'`) or, for "local", with /bin/sh on this machine, writes the job secret to
// each one's standard input, notices when one exits, and on destruction terminates and reaps
// whatever is still running (so an error path never leaves processes behind).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace imgcast::replicator {

class AgentLauncher {
 public:
  struct Exit {
    int rank;         // -1: the launcher process of launch_step (every agent it started)
    std::string how;  // "exited with status 255", "was killed by signal 9"
    bool success;
  };

  // rsh: "local", or a command split on spaces ("ssh -o BatchMode=yes").
  explicit AgentLauncher(std::string rsh);
  ~AgentLauncher();
  AgentLauncher(const AgentLauncher&) = delete;
  AgentLauncher& operator=(const AgentLauncher&) = delete;

  // Throws TransferError when the launcher command cannot be started.
  void launch(int rank, const std::string& host, const std::string& command,
              const std::string& stdin_line);
  // Starts every agent at once through one launcher process (srun, mpirun): `argv` is its whole
  // command line. The secret goes into that process's environment as `secret_variable` (the
  // launcher forwards it to the agents); standard input stays closed. Its exit reports rank -1.
  // Throws TransferError when it cannot be started.
  void launch_step(const std::vector<std::string>& argv, const std::string& secret_variable,
                   const std::string& secret_value);
  // Asks the launcher process of one host's agent to end (SIGTERM; finish() is the backstop): a
  // host given up before the plan, whose ssh may hang on a dead route. Not the step launcher.
  void stop(int rank);
  // Agents that ended since the last call (non-blocking).
  std::vector<Exit> reap();
  // Waits up to `grace` for every agent to end, then sends SIGTERM, then SIGKILL.
  void finish(std::chrono::milliseconds grace);
  bool running() const noexcept;

 private:
  struct Child {
    int rank;
    pid_t pid;
  };
  std::string rsh_;
  std::vector<Child> children_;
};

}  // namespace imgcast::replicator
