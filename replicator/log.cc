#include "replicator/log.h"

#include "transport/log.h"

namespace imgcast::replicator {

spdlog::logger& log() {
  static const std::shared_ptr<spdlog::logger> logger = transport::named_logger("replicator");
  return *logger;
}

}  // namespace imgcast::replicator
