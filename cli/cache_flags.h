// --cache, --cache-dir and --cache-max: the same three flags on `replicate` and `hook`, and the
// ReplicateOptions they become (replicator/session/replicate.h).
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "replicator/session/replicate.h"

namespace imgcast::cli {

struct CacheFlags {
  bool cache = false;
  std::string dir;  // empty: replicator::default_cache_dir()
  std::string max = "0";
};

// Adds the three flags to `cmd`; `cache_help` says what --cache does there.
void add_cache_flags(CLI::App* cmd, CacheFlags& flags, const std::string& cache_help);

// nullopt without --cache. Throws InputError for a relative directory (every host uses it) or a
// size that is not one.
std::optional<replicator::ReplicateOptions::CacheOptions> cache_options(const CacheFlags& flags);

}  // namespace imgcast::cli
