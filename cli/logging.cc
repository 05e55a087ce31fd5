#include "cli/logging.h"

#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace imgcast::cli {

void setup_logging(const std::string& host, int rank, const std::string& level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  const std::string pattern =
      "[%H:%M:%S.%e] [" + host + " rank " + std::to_string(rank) + "] [%n] %^%l%$: %v";
  for (const char* name : {"transport", "replicator"}) {
    spdlog::drop(name);
    auto logger = std::make_shared<spdlog::logger>(name, sink);
    logger->set_pattern(pattern);
    logger->set_level(spdlog::level::info);
    spdlog::register_logger(logger);
  }
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("imgcast", sink));
  spdlog::default_logger()->set_pattern(pattern);
  // SPDLOG_LEVEL=debug or SPDLOG_LEVEL=transport=trace,replicator=debug
  spdlog::cfg::load_env_levels();
  if (!level.empty()) {
    spdlog::set_level(spdlog::level::from_str(level));
  }
}

}  // namespace imgcast::cli
