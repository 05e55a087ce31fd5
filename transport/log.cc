#include "transport/log.h"

namespace imgcast::transport {

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
