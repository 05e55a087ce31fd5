#include "replicator/log.h"

namespace imgcast::replicator {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("replicator")) {
      return existing;
    }
    auto created = spdlog::default_logger()->clone("replicator");
    spdlog::register_logger(created);
    return created;
  }();
  return *logger;
}

}  // namespace imgcast::replicator
