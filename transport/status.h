// Status: the outcome of a data-path call (post, poll, completions). The data path never throws;
// it returns a Status, and an ok Status carries no string, so success allocates nothing.
// Setup calls throw transport::Error (error.h), which carries a Status. A callee's failure is
// passed up with IMGCAST_RETURN_IF_ERROR.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace imgcast::transport {

enum class StatusCode : std::uint8_t {
  kOk = 0,
  kBusy,              // queue full; retry after a completion
  kInvalidArgument,   // a caller's request is malformed
  kOutOfRange,        // offset/length outside a region
  kIoError,           // a syscall or device error
  kClosed,            // the endpoint or peer is gone
  kProtocolError,     // bytes from the wire were malformed
  kTimeout,           // a deadline passed
  kUnavailable,       // a backend or device is not usable here
  kPermissionDenied,  // a peer failed authentication or named a region it may not write
  kNoSpace,           // a write into a region's file found its file system full (ours, not the
                      // peer's fault)
};

std::string_view to_string(StatusCode code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  bool is_ok() const noexcept { return code_ == StatusCode::kOk; }
  StatusCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // "closed: peer 10.0.0.2:4711 hung up"
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

namespace detail {
// IMGCAST_RETURN_IF_ERROR's trace: "<file>:<line>: returning <status>" at debug through the
// "transport" logger. Out of line, so this header does not pull in spdlog; never throws.
void log_returned_error(const Status& status, const char* file, int line) noexcept;
}  // namespace detail

}  // namespace imgcast::transport

// Evaluates `expr`, a Status, once. Unless it is ok, logs where it passed through (file:line, at
// debug) and returns it from the enclosing function, which must return Status. Bound by
// reference, so an ok result (or a latched member) is not copied.
#define IMGCAST_RETURN_IF_ERROR(expr)                                                        \
  do {                                                                                       \
    auto&& imgcast_status_ = (expr);                                                         \
    if (!imgcast_status_.is_ok()) {                                                          \
      ::imgcast::transport::detail::log_returned_error(imgcast_status_, __FILE__, __LINE__); \
      return imgcast_status_;                                                                \
    }                                                                                        \
  } while (false)
