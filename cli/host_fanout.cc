#include "cli/host_fanout.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "replicator/session/agent_command_line.h"
#include "replicator/unique_fd.h"

namespace imgcast::cli {

namespace {

using Clock = std::chrono::steady_clock;
using replicator::UniqueFd;

// A host that prints more than this is not answering `cache list`: stop reading it.
constexpr std::size_t kMaxOutput = 64u << 20;
// Of stderr only the end matters (the error line comes last).
constexpr std::size_t kKeptError = 8192;

struct Running {
  std::size_t index = 0;
  pid_t pid = -1;
  UniqueFd out;
  UniqueFd err;
  Clock::time_point deadline;
  bool timed_out = false;
  bool too_long = false;
};


// Its own "imgcast: error: ..." line when the remote imgcast gave one (the reason, already one
// line), else the last line ssh or the shell printed.
std::string error_line(const std::string& err) {
  static const std::string kPrefix = "imgcast: error: ";
  std::string last;
  std::size_t start = 0;
  while (start < err.size()) {
    std::size_t end = err.find('\n', start);
    if (end == std::string::npos)
      end = err.size();
    std::string line = err.substr(start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
      line.pop_back();
    if (line.rfind(kPrefix, 0) == 0)
      return line.substr(kPrefix.size());
    if (!line.empty())
      last = std::move(line);
    start = end + 1;
  }
  return last;
}

bool start(Running& run, const std::string& rsh, const std::string& host,
           const std::string& command, std::string* why) {
  const std::vector<std::string> argv = replicator::rsh_argv(rsh, host, command);
  std::vector<char*> raw;
  for (const auto& a : argv)
    raw.push_back(const_cast<char*>(a.c_str()));
  raw.push_back(nullptr);
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    *why = fmt::format("cannot create a pipe: {}", std::strerror(errno));
    return false;
  }
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    *why = fmt::format("cannot create a pipe: {}", std::strerror(errno));
    return false;
  }
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);
  const pid_t pid = ::fork();
  if (pid < 0) {
    *why = fmt::format("cannot start {}: fork: {}", argv.front(), std::strerror(errno));
    return false;
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec. Its own process group, so a timeout ends
    // whatever the rsh command started too (a shell that did not exec, ssh's helpers).
    ::setpgid(0, 0);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0)
      ::dup2(null_fd, STDIN_FILENO);
    ::dup2(out_write.get(), STDOUT_FILENO);
    ::dup2(err_write.get(), STDERR_FILENO);
    ::execvp(raw[0], raw.data());
    const char msg[] = "imgcast: error: cannot run the --rsh command (is it on PATH?)\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: no race with the first kill
  run.pid = pid;
  run.out = std::move(out_read);
  run.err = std::move(err_read);
  spdlog::debug("{}: started {} (pid {})", host, argv.front(), pid);
  return true;
}

// Reads what is there; false at end of file (or an error).
bool drain(int fd, std::string& into, std::size_t limit, bool keep_tail) {
  char buffer[65536];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  if (n <= 0)
    return false;
  into.append(buffer, static_cast<std::size_t>(n));
  if (keep_tail && into.size() > limit)
    into.erase(0, into.size() - limit);
  return true;
}

}  // namespace

std::vector<HostAnswer> run_on_hosts(const std::string& rsh, const std::vector<std::string>& hosts,
                                     const std::string& command, std::chrono::milliseconds timeout,
                                     std::size_t parallel) {
  std::vector<HostAnswer> answers(hosts.size());
  std::vector<std::string> errs(hosts.size());
  std::vector<Running> running;
  std::size_t next = 0;
  while (next < hosts.size() || !running.empty()) {
    while (next < hosts.size() && running.size() < std::max<std::size_t>(parallel, 1)) {
      answers[next].host = hosts[next];
      Running run;
      run.index = next;
      run.deadline = Clock::now() + timeout;
      std::string why;
      if (start(run, rsh, hosts[next], command, &why)) {
        running.push_back(std::move(run));
      } else {
        answers[next].error = why;
      }
      ++next;
    }
    std::vector<pollfd> fds;
    for (const Running& run : running) {
      fds.push_back({run.out.valid() ? run.out.get() : -1, POLLIN, 0});
      fds.push_back({run.err.valid() ? run.err.get() : -1, POLLIN, 0});
    }
    int wait_ms = 1000;
    const auto now = Clock::now();
    for (const Running& run : running) {
      if (!run.out.valid() && !run.err.valid()) {
        wait_ms = std::min(wait_ms, 20);  // output over, exit not yet reaped: look again soon
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(run.deadline - now).count();
      wait_ms = static_cast<int>(std::clamp<long long>(left + 1, 0, wait_ms));
    }
    if (::poll(fds.data(), fds.size(), wait_ms) < 0 && errno != EINTR) {
      spdlog::warn("poll: {}", std::strerror(errno));
    }
    for (std::size_t i = 0; i < running.size(); ++i) {
      Running& run = running[i];
      std::string& out = answers[run.index].out;
      if (fds[2 * i].revents != 0 && !drain(run.out.get(), out, kMaxOutput, false))
        run.out.reset();
      if (fds[2 * i + 1].revents != 0 && !drain(run.err.get(), errs[run.index], kKeptError, true))
        run.err.reset();
      if (out.size() > kMaxOutput && !run.too_long) {
        run.too_long = true;
        ::kill(-run.pid, SIGKILL);
      }
      if (!run.timed_out && Clock::now() >= run.deadline) {
        run.timed_out = true;
        ::kill(-run.pid, SIGKILL);
        run.out.reset();
        run.err.reset();
      }
    }
    // A host is done once its output ended and its process is reaped (in that order: a
    // process can exit before its last bytes are read).
    for (auto it = running.begin(); it != running.end();) {
      int status = 0;
      if (it->out.valid() || it->err.valid() || ::waitpid(it->pid, &status, WNOHANG) != it->pid) {
        ++it;
        continue;
      }
      HostAnswer& answer = answers[it->index];
      answer.ok = !it->timed_out && !it->too_long && WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (it->timed_out) {
        answer.error = fmt::format("no answer within {} s (--timeout)", timeout.count() / 1000.0);
      } else if (it->too_long) {
        answer.error = fmt::format("printed more than {} MiB: not a cache list", kMaxOutput >> 20);
      } else if (!answer.ok) {
        const std::string line = error_line(errs[it->index]);
        answer.error = line.empty() ? fmt::format("--rsh command {}", replicator::describe_exit(status))
                                    : fmt::format("{} ({})", line, replicator::describe_exit(status));
      }
      spdlog::debug("{}: {}", answer.host, answer.ok ? "answered" : answer.error);
      it = running.erase(it);
    }
  }
  return answers;
}

}  // namespace imgcast::cli
