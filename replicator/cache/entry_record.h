// EntryRecord: what the node cache keeps beside each image (DIR/entries/DIGEST.json): its size
// and identity when committed, the sources that found it, when it was added and last used.
// Read back with every bound checked: the file is ours (node_cache.h checks), but a record that
// does not parse is treated as no entry, never trusted in part.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "replicator/image/integrity.h"

namespace imgcast::replicator {

struct EntrySource {
  std::string key;   // make_source_key() of the source that found the entry
  std::string path;  // that source's path, for people reading `imgcast cache list`
  bool operator==(const EntrySource&) const = default;
};

struct EntryRecord {
  ImageDigest digest;
  std::uint64_t bytes = 0;
  std::uint64_t inode = 0;  // the entry file's, when committed
  std::int64_t mtime_ns = 0;  // (its size, inode and mtime must still be these)
  std::int64_t added_ns = 0;      // wall clock (CLOCK_REALTIME), ns since the epoch
  std::int64_t last_used_ns = 0;  // set by every run that finds or pins it
  std::vector<EntrySource> sources;

  std::string encode() const;  // one JSON object
  static std::optional<EntryRecord> decode(std::string_view json);
  bool operator==(const EntryRecord&) const = default;
};

// At most this many sources are kept per entry (the oldest go first): a record stays small.
inline constexpr std::size_t kMaxEntrySources = 16;

}  // namespace imgcast::replicator
