// Logging setup for the imgcast command: the "transport" and "replicator" spdlog loggers, on
// stderr, with this process's host and rank in every line. Levels: the --log-level option, else
// SPDLOG_LEVEL from the environment, else "info".
#pragma once

#include <string>

namespace imgcast::cli {

void setup_logging(const std::string& host, int rank, const std::string& level);

}  // namespace imgcast::cli
