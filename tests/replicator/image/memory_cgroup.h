// MemoryCgroup: runs a function in a forked child placed in a fresh memory cgroup with a chosen
// limit (cgroup v1's memory controller, or v2 where the memory controller is delegated), and
// hands back the line the child wrote. Where no cgroup can be made (not root, no controller)
// made() is false and the test skips with error().
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

namespace imgcast::replicator {

class MemoryCgroup {
 public:
  explicit MemoryCgroup(std::uint64_t limit) {
    namespace fs = std::filesystem;
    const std::string name = "imgcast-test-" + std::to_string(::getpid());
    const bool v1 = fs::exists("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    dir_ = (v1 ? fs::path("/sys/fs/cgroup/memory") : fs::path("/sys/fs/cgroup")) / name;
    std::error_code ec;
    if (!fs::create_directory(dir_, ec)) {
      error_ = "cannot make " + dir_.string() + ": " + (ec ? ec.message() : "exists");
      return;
    }
    std::ofstream(dir_ / (v1 ? "memory.limit_in_bytes" : "memory.max")) << limit;
    if (!fs::exists(dir_ / (v1 ? "memory.usage_in_bytes" : "memory.current"))) {
      error_ = "no memory controller in " + dir_.string();
      return;
    }
    made_ = true;
  }
  ~MemoryCgroup() {
    if (!dir_.empty())
      ::rmdir(dir_.c_str());  // empty again once the child has exited
  }
  MemoryCgroup(const MemoryCgroup&) = delete;
  MemoryCgroup& operator=(const MemoryCgroup&) = delete;
  bool made() const { return made_; }
  const std::string& error() const { return error_; }

  // `child()` runs in a forked process inside the cgroup; what it returns comes back.
  std::string run(const std::function<std::string()>& child) const {
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0)
      return "pipe failed";
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(pipe_fds[0]);
      std::ofstream(dir_ / "cgroup.procs") << ::getpid() << std::flush;
      const std::string out = child();
      (void)!::write(pipe_fds[1], out.data(), out.size());
      ::_exit(0);
    }
    ::close(pipe_fds[1]);
    std::string out;
    char buffer[256];
    for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;)
      out.append(buffer, n);
    ::close(pipe_fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return out;
  }

 private:
  std::filesystem::path dir_;
  bool made_ = false;
  std::string error_;
};

}  // namespace imgcast::replicator
