#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace imgcast::test {

namespace fs = std::filesystem;

namespace {
std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path make_temp_dir(const fs::path& base, const char* prefix) {
  std::string pattern = (base / prefix).string() + "XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  return pattern;
}
}  // namespace

Process::Process(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  static int counter = 0;
  const fs::path base = fs::temp_directory_path() / ("imgcast-test-" + std::to_string(::getpid()) +
                                                     "-" + std::to_string(counter++));
  out_path_ = base.string() + ".out";
  err_path_ = base.string() + ".err";
  pid_ = ::fork();
  if (pid_ < 0) {
    throw std::runtime_error("fork failed");
  }
  if (pid_ == 0) {
    const int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    // Its own process group, so a test can signal the whole job like a terminal would.
    ::setpgid(0, 0);
    for (const auto& entry : env) {
      ::putenv(const_cast<char*>(entry.c_str()));
    }
    std::vector<char*> raw;
    for (const auto& a : argv)
      raw.push_back(const_cast<char*>(a.c_str()));
    raw.push_back(nullptr);
    ::execvp(raw[0], raw.data());
    ::_exit(127);
  }
}

Process::~Process() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ignored;
  fs::remove(out_path_, ignored);
  fs::remove(err_path_, ignored);
}

std::string Process::err_so_far() const { return slurp(err_path_); }

ProcessResult Process::wait(std::chrono::milliseconds timeout) {
  ProcessResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      result.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  reaped_ = true;
  result.exit_code = WIFEXITED(status) && !result.timed_out ? WEXITSTATUS(status) : -1;
  result.out = slurp(out_path_);
  result.err = slurp(err_path_);
  return result;
}

ProcessResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                  const std::vector<std::string>& env) {
  Process process(argv, env);
  return process.wait(timeout);
}

TempDir::TempDir(const fs::path& base) : path_(make_temp_dir(base, "imgcast-test-")) {}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

void write_random_file(const fs::path& path, std::uint64_t bytes, std::uint64_t seed) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  std::mt19937_64 random(seed);
  std::vector<std::uint64_t> block(1 << 16);
  while (bytes > 0) {
    for (auto& w : block)
      w = random();
    const std::uint64_t n = std::min<std::uint64_t>(bytes, block.size() * 8);
    out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(n));
    bytes -= n;
  }
}

bool files_equal(const fs::path& a, const fs::path& b) {
  if (!fs::exists(a) || !fs::exists(b) || fs::file_size(a) != fs::file_size(b)) {
    return false;
  }
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  std::vector<char> ba(1 << 20), bb(1 << 20);
  while (fa && fb) {
    fa.read(ba.data(), static_cast<std::streamsize>(ba.size()));
    fb.read(bb.data(), static_cast<std::streamsize>(bb.size()));
    if (fa.gcount() != fb.gcount() ||
        !std::equal(ba.begin(), ba.begin() + fa.gcount(), bb.begin())) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> list_dir(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace imgcast::test
