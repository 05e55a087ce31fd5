// Finding and watching the agent processes of a local job (`--rsh local`: they run on this
// machine, children of the root), for the tests that kill or time them.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tests/e2e/harness.h"
#include "tests/support/proc_stats.h"

namespace imgcast::test {

// The parent pid of a process, from /proc/PID/stat (0 when it is gone).
inline pid_t parent_of(const std::filesystem::path& proc_entry) {
  const std::string stat = read_proc_file(proc_entry / "stat");
  const auto close = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos)
    return 0;
  char state = 0;
  int ppid = 0;
  std::istringstream fields(stat.substr(close + 1));
  fields >> state >> ppid;
  return ppid;
}

// The pid of the agent process of `rank` that the root `root` started (through /proc: it runs on
// this machine; `--rsh local` execs the agent in the root's child, so its parent is the root).
// Only that root's: other tests may run jobs with the same ranks at the same time.
inline pid_t find_agent(int rank, pid_t root) {
  const std::string needle = fmt::format("--rank{}{}", '\0', rank);
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    if (parent_of(entry.path()) != root)
      continue;
    std::string cmdline = read_proc_file(entry.path() / "cmdline");
    cmdline.push_back('\0');
    if (cmdline.find("agent") != std::string::npos &&
        cmdline.find(needle + std::string(1, '\0')) != std::string::npos &&
        cmdline.find(IMGCAST_BINARY) != std::string::npos) {
      return static_cast<pid_t>(std::stoi(name));
    }
  }
  return -1;
}

// Polls `process`'s stderr every millisecond until it holds `needle` or `timeout` passes; says
// whether it came.
inline bool wait_for_log(const Process& process, const std::string& needle,
                         std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (process.err_so_far().find(needle) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Waits until the root says data flows (its debug log), then a little into the transfer. A run
// that never gets there is left to the caller's checks, which say what the root printed.
inline void wait_until_data_flows(const Process& replicate) {
  (void)wait_for_log(replicate, "data flows", std::chrono::seconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
}

// Whether `pid` still runs: a zombie (dead, not yet reaped by whoever inherited it) does not.
inline bool running(pid_t pid) {
  const std::string stat = read_proc_file(fmt::format("/proc/{}/stat", pid));
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

}  // namespace imgcast::test
