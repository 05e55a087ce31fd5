// Test support: run real processes (the imgcast binary, shell helpers) and collect their exit
// code and output. Output goes through temporary files, so a chatty child can never block on a
// full pipe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace imgcast::test {

struct ProcessResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
};

class Process {
 public:
  // Starts argv[0] (searched in PATH) with extra environment entries "NAME=value".
  Process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
  ~Process();  // kills and reaps a process still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const noexcept { return pid_; }
  // What it has written to stderr so far.
  std::string err_so_far() const;
  // Waits up to `timeout`; on timeout kills it (SIGKILL) and marks the result timed out.
  ProcessResult wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::filesystem::path out_path_;
  std::filesystem::path err_path_;
  bool reaped_ = false;
};

ProcessResult run(const std::vector<std::string>& argv,
                  std::chrono::milliseconds timeout = std::chrono::seconds(120),
                  const std::vector<std::string>& env = {});

// A fresh directory under /dev/shm (tmpfs, like a node-local /tmp), removed on destruction.
class TempDir {
 public:
  // Under /dev/shm by default (tmpfs: fast, and gone at reboot); a test of disk behaviour
  // names a disk directory such as /var/tmp.
  explicit TempDir(const std::filesystem::path& base = "/dev/shm");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Writes `bytes` pseudo-random bytes (seeded) to `path`.
void write_random_file(const std::filesystem::path& path, std::uint64_t bytes,
                       std::uint64_t seed = 1);
bool files_equal(const std::filesystem::path& a, const std::filesystem::path& b);
// Every entry name in a directory (non-recursive), sorted.
std::vector<std::string> list_dir(const std::filesystem::path& dir);

}  // namespace imgcast::test
