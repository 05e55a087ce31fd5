// Status: the outcome of a data-path call (post, poll, completions). The data path never throws;
// it returns a Status, and an ok Status carries no string, so success allocates nothing.
// Setup calls throw transport::Error (error.h), which carries a Status.
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

}  // namespace imgcast::transport

// Propagates a non-ok Status to the caller, leaving a debug breadcrumb with file:line.
#define IMGCAST_RETURN_IF_ERROR(expr)                                                    \
  do {                                                                                   \
    ::imgcast::transport::Status imgcast_status_ = (expr);                               \
    if (!imgcast_status_.is_ok()) {                                                      \
      ::imgcast::transport::detail::log_breadcrumb(__FILE__, __LINE__, imgcast_status_); \
      return imgcast_status_;                                                            \
    }                                                                                    \
  } while (0)

namespace imgcast::transport::detail {
void log_breadcrumb(const char* file, int line, const Status& status) noexcept;
}  // namespace imgcast::transport::detail
