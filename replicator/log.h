// The "replicator" spdlog logger (configured by cli/logging.cc; a stderr default otherwise).
#pragma once

#include <spdlog/spdlog.h>

namespace imgcast::replicator {
spdlog::logger& log();
}  // namespace imgcast::replicator
