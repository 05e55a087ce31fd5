// The "transport" spdlog logger. cli/logging.cc configures it; tests and library users that
// never configure logging get a plain stderr logger of the same name on first use.
#pragma once

#include <spdlog/spdlog.h>

namespace imgcast::transport {
spdlog::logger& log();
}  // namespace imgcast::transport
