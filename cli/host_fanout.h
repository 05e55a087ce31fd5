// run_on_hosts: one shell command on many hosts through an ssh-compatible command (the agents'
// --rsh, replicator::rsh_argv), in parallel, each with a deadline, collecting what each prints.
// For commands that answer on stdout and end (`imgcast cache list --hosts` runs `imgcast cache
// list --json` on each), not for agents, which stay connected to the root.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace imgcast::cli {

struct HostAnswer {
  std::string host;
  bool ok = false;    // exited with status 0 within the deadline
  std::string out;    // its standard output
  std::string error;  // when not ok: one line saying why (its own error line when it gave one)
};

// `command` is one shell command line (every word quoted). At most `parallel` hosts run at
// once; each gets `timeout` from its start, after which its process group is killed. Answers
// come in the order of `hosts`.
std::vector<HostAnswer> run_on_hosts(const std::string& rsh, const std::vector<std::string>& hosts,
                                     const std::string& command, std::chrono::milliseconds timeout,
                                     std::size_t parallel = 64);

}  // namespace imgcast::cli
