#include "cli/context_factory.h"

#include <filesystem>

#include "transport/factory.h"

namespace imgcast::cli {

replicator::ContextFactory context_factory() {
  return [](transport::Kind kind, bool tcp_fallback) {
    transport::ContextOptions options;
    options.tcp_fallback = tcp_fallback;
    return transport::make_context(kind, options);
  };
}

std::string self_path() {
  std::error_code error;
  const auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::string("imgcast") : path.string();
}

}  // namespace imgcast::cli
