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



std::shared_ptr<spdlog::logger> named_logger(const char* name) {
  if (auto existing = spdlog::get(name)) {
    return existing;
  }
  auto created = spdlog::default_logger()->clone(name);
  spdlog::register_logger(created);
  return created;
}

spdlog::logger& log() {
  static const std::shared_ptr<spdlog::logger> logger = named_logger("transport");
  return *logger;
}

}  // namespace imgcast::transport
