// The replicator's error kinds. Each maps to one exit code of the CLI, and each what() is a
// one-line reason that names the thing and what to do.
#pragma once

#include <stdexcept>
#include <string>

namespace imgcast::replicator {

// Exit codes, stable for every subcommand.
enum class ExitCode : int {
  kSuccess = 0,
  kUsage = 1,           // usage or bad input
  kTransferFailed = 2,  // no node (or not the root) got a verified copy
  kPartial = 3,         // some nodes failed
  kSecurity = 4,        // refused for security reasons
};

class ImgcastError : public std::runtime_error {
 public:
  ImgcastError(ExitCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

// Bad input: a path, a host list, an option. Nothing has been written.
class InputError : public ImgcastError {
 public:
  explicit InputError(const std::string& message) : ImgcastError(ExitCode::kUsage, message) {}
};

// The transfer itself failed (I/O, a peer, a digest).
class TransferError : public ImgcastError {
 public:
  explicit TransferError(const std::string& message)
      : ImgcastError(ExitCode::kTransferFailed, message) {}
};

// A peer failed authentication, or a destination would escape the directory the user named.
class SecurityError : public ImgcastError {
 public:
  explicit SecurityError(const std::string& message) : ImgcastError(ExitCode::kSecurity, message) {}
};

}  // namespace imgcast::replicator
