// The "transport" spdlog logger. cli/logging.cc configures it; tests and library users that
// never configure logging get a plain stderr logger of the same name on first use.
#pragma once

#include <spdlog/spdlog.h>

namespace imgcast::transport {
spdlog::logger& log();
// The spdlog logger registered under `name`, or a clone of the default logger registered under
// it on first use (for libraries used without the CLI's logging setup).
std::shared_ptr<spdlog::logger> named_logger(const char* name);
}  // namespace imgcast::transport
