#include "cli/cache_flags.h"

#include <fmt/format.h>

#include "cli/parse.h"
#include "replicator/cache/node_cache.h"
#include "replicator/errors.h"

namespace imgcast::cli {

void add_cache_flags(CLI::App* cmd, CacheFlags& flags, const std::string& cache_help) {
  cmd->add_flag("--cache", flags.cache, cache_help);
  cmd->add_option("--cache-dir", flags.dir,
                  "The node cache's directory on every host, may hold %r / %h (default: "
                  "$IMGCAST_CACHE_DIR, else /tmp/imgcast-cache-UID)");
  cmd->add_option("--cache-max", flags.max,
                  "The node cache's size budget, e.g. 100G: least recently used entries no job "
                  "uses are evicted to fit (default 0: only the file system's free space)")
      ->capture_default_str();
}

std::optional<replicator::ReplicateOptions::CacheOptions> cache_options(const CacheFlags& flags) {
  if (!flags.cache) {
    return std::nullopt;
  }
  replicator::ReplicateOptions::CacheOptions options;
  options.dir = flags.dir.empty() ? replicator::default_cache_dir() : std::filesystem::path(flags.dir);
  if (!options.dir.is_absolute()) {
    throw replicator::InputError(fmt::format(
        "the cache directory {} must be an absolute path: every host uses it",
        options.dir.string()));
  }
  options.budget = parse_size(flags.max, "--cache-max");
  return options;
}

}  // namespace imgcast::cli
