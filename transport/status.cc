#include "transport/status.h"

#include "transport/log.h"

namespace imgcast::transport {

std::string_view to_string(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kBusy:
      return "busy";
    case StatusCode::kInvalidArgument:
      return "invalid argument";
    case StatusCode::kOutOfRange:
      return "out of range";
    case StatusCode::kIoError:
      return "I/O error";
    case StatusCode::kClosed:
      return "closed";
    case StatusCode::kProtocolError:
      return "protocol error";
    case StatusCode::kTimeout:
      return "timeout";
    case StatusCode::kUnavailable:
      return "unavailable";
    case StatusCode::kPermissionDenied:
      return "permission denied";
    case StatusCode::kNoSpace:
      return "no space";
  }
  return "unknown";
}

std::string Status::to_string() const {
  std::string out(transport::to_string(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

namespace detail {

void log_returned_error(const Status& status, const char* file, int line) noexcept {
  try {
    spdlog::logger& logger = log();
    if (!logger.should_log(spdlog::level::debug))
      return;  // the common case: do not build the text
    const std::string_view path(file);
    SPDLOG_LOGGER_DEBUG(&logger, "{}:{}: returning {}", path.substr(path.rfind('/') + 1), line,
                        status.to_string());
  } catch (...) {
    // A trace line that cannot be written (no memory) must not turn the error into a crash.
  }
}

}  // namespace detail

}  // namespace imgcast::transport
