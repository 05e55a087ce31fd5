#include "cli/result_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

namespace imgcast::cli {

ResultOutput::ResultOutput() : saved_(::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3)) {
  std::cout.flush();
  std::fflush(stdout);
  if (saved_.get() >= 0) {
    (void)::dup2(STDERR_FILENO, STDOUT_FILENO);  // stderr is open: it is where errors go anyway
  }
}

ResultOutput::~ResultOutput() {
  std::cout.flush();
  std::fflush(stdout);
  if (saved_.get() >= 0) {
    (void)::dup2(saved_.get(), STDOUT_FILENO);  // back to a descriptor that was stdout
  }
}

void ResultOutput::write(std::string_view text) const {
  const int fd = saved_.get() >= 0 ? saved_.get() : STDOUT_FILENO;
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      std::cerr << "imgcast: error: cannot write the result to stdout: " << std::strerror(errno)
                << "\n";
      return;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

void send_stdout_to_stderr() {
  std::cout.flush();
  std::fflush(stdout);
  (void)::dup2(STDERR_FILENO, STDOUT_FILENO);  // nothing to do if it fails: stdout stays as is
}

}  // namespace imgcast::cli
