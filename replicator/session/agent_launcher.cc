#include "replicator/session/agent_launcher.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "replicator/errors.h"
#include "replicator/log.h"
#include "replicator/session/agent_command_line.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

AgentLauncher::AgentLauncher(std::string rsh) : rsh_(std::move(rsh)) {}

AgentLauncher::~AgentLauncher() { finish(std::chrono::milliseconds(2000)); }

void AgentLauncher::launch(int rank, const std::string& host, const std::string& command,
                           const std::string& stdin_line) {
  const std::vector<std::string> argv = rsh_argv(rsh_, host, command);
  std::vector<char*> raw;
  for (const auto& a : argv) {
    raw.push_back(const_cast<char*>(a.c_str()));
  }
  raw.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw TransferError(
        fmt::format("cannot create a pipe for the agent on {}: {}", host, std::strerror(errno)));
  }
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);

  const pid_t pid = ::fork();
  if (pid < 0) {
    throw TransferError(
        fmt::format("cannot start the agent on {}: fork: {}", host, std::strerror(errno)));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::dup2(read_end.get(), STDIN_FILENO);
    ::execvp(raw[0], raw.data());
    const char msg[] = "imgcast: cannot run the agent launcher command\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  read_end.reset();
  children_.push_back(Child{rank, pid});
  log().debug("started agent rank {} on {} (pid {}): {}", rank, host, pid, argv.front());

  // The secret is a few dozen bytes: it fits in the pipe buffer, so this never blocks.
  const char* data = stdin_line.data();
  std::size_t left = stdin_line.size();
  while (left > 0) {
    const ssize_t n = ::write(write_end.get(), data, left);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;  // The agent died already; reap() will report it.
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

void AgentLauncher::launch_step(const std::vector<std::string>& argv,
                                const std::string& secret_variable,
                                const std::string& secret_value) {
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> environment;
  const std::string prefix = secret_variable + "=";
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, prefix.c_str(), prefix.size()) != 0)
      environment.emplace_back(*e);
  }
  environment.push_back(prefix + secret_value);
  std::vector<char*> raw_env;
  for (auto& e : environment)
    raw_env.push_back(e.data());
  raw_env.push_back(nullptr);
  std::vector<char*> raw;
  for (const auto& a : argv)
    raw.push_back(const_cast<char*>(a.c_str()));
  raw.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) {
    throw TransferError(fmt::format("cannot start the agents with {}: fork: {}", argv.front(),
                                    std::strerror(errno)));
  }
  if (pid == 0) {
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0)
      ::dup2(null_fd, STDIN_FILENO);
    ::execvpe(raw[0], raw.data(), raw_env.data());
    const char msg[] = "imgcast: cannot run the agent launcher (is it installed and on PATH?)\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  children_.push_back(Child{-1, pid});
  log().debug("started every agent through {} (pid {})", argv.front(), pid);
}

std::vector<AgentLauncher::Exit> AgentLauncher::reap() {
  std::vector<Exit> exits;
  for (auto it = children_.begin(); it != children_.end();) {
    int status = 0;
    const pid_t done = ::waitpid(it->pid, &status, WNOHANG);
    if (done == it->pid) {
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      exits.push_back(Exit{it->rank, describe_exit(status), ok});
      it = children_.erase(it);
    } else {
      ++it;
    }
  }
  return exits;
}

void AgentLauncher::stop(int rank) {
  for (const auto& child : children_) {
    if (child.rank == rank && rank >= 0) {
      ::kill(child.pid, SIGTERM);  // reaped, and reported, by reap()
    }
  }
}

bool AgentLauncher::running() const noexcept { return !children_.empty(); }

void AgentLauncher::finish(std::chrono::milliseconds grace) {
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (running() && std::chrono::steady_clock::now() < deadline) {
    reap();
    if (running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  for (int sig : {SIGTERM, SIGKILL}) {
    if (!running()) {
      return;
    }
    for (const auto& child : children_) {
      ::kill(child.pid, sig);
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000);
    while (running() && std::chrono::steady_clock::now() < until) {
      reap();
      if (running()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
}

}  // namespace imgcast::replicator
