// The root's side of a --cache run before any agent starts: which file the transfer reads.
#include <sys/stat.h>

#include <fmt/format.h>

#include "replicator/errors.h"
#include "replicator/image/cache_record.h"
#include "replicator/image/destination.h"
#include "replicator/image/image_source.h"
#include "replicator/log.h"
#include "replicator/session/root_session.h"

namespace imgcast::replicator {

namespace fs = std::filesystem;

void RootSession::open_source_through_cache() {
  if (!options_.sources.empty()) {
    throw InputError("--cache takes one image file: directory trees and several sources are "
                     "not cached (yet)");
  }
  const fs::path& source = options_.source;
  struct stat st {};
  // stat() is a metadata lookup, not a read: with a cached entry the PFS sees nothing else.
  if (::stat(source.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw InputError(fmt::format("--cache takes one image file: {} is a directory", source.string()));
  }
  std::error_code error;
  const fs::path absolute = fs::absolute(source, error);
  const std::string key =
      ::stat(source.c_str(), &st) == 0 && S_ISREG(st.st_mode)
          ? make_source_key(error ? source : absolute, st)
          : std::string();
  CacheTarget target;
  target.cache_dir = expand_destination(options_.cache->dir.string(), 0, options_.hosts[0]);
  target.budget = options_.cache->budget;
  target.destination = options_.destination.empty()
                           ? std::string()
                           : expand_destination(options_.destination, 0, options_.hosts[0]);
  target.mode = options_.mode;
  target.follow_symlinks = options_.follow_symlinks;
  target.job_tag = job_tag_;
  target.source_key = key;
  target.source_path = error ? source.string() : absolute.string();
  cache_source_path_ = target.source_path;
  target.keep_pin = options_.keep_cache_pin;
  cache_.emplace(std::move(target));
  const std::uint64_t bytes = static_cast<std::uint64_t>(st.st_size);
  if (!key.empty()) {
    if (const auto digest = cache_->find(bytes, options_.force)) {
      // Ours is this source already: the transfer, if any node needs one, reads our entry.
      source_ = std::make_unique<ImageSource>(ImageSource::open(cache_->entry()->path()));
      source_key_ = key;
      root_cache_ = CacheRecord{key, bytes, *digest};
      log().info("serving {} from this node's cache entry {} (the source is not read)",
                 source.string(), digest->to_hex());
      return;
    }
  }
  source_ = std::make_unique<ImageSource>(ImageSource::open(source));
  source_key_ = source_->cache_key();
}

}  // namespace imgcast::replicator
