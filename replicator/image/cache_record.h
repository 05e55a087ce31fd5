// The node-local cache: when a copy is placed, a small record is attached to it (the xattr
// user.imgcast.cache, or a sidecar file ".NAME.imgcast-cache" where the file system has no user
// xattrs) saying which source it came from and what it holds. A later run whose source has the
// same key (path, size, mtime, inode, device: decided without reading the source) and whose copy
// still holds that record skips the node; when every node is skipped the source is not read at
// all. The record also pins the copy's own size and mtime, so a copy changed since it was placed
// is never taken for cached.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "replicator/image/integrity.h"

namespace imgcast::replicator {

struct CacheRecord {
  std::string source_key;            // make_source_key()
  std::uint64_t image_bytes = 0;     // the copy's size
  ImageDigest digest;                // the copy's verified xxh3-128
  std::int64_t placed_mtime_ns = 0;  // the copy's mtime when it was placed

  // "imgcast-cache 1 <key> <bytes> <digest hex> <mtime ns>"
  std::string encode() const;
  // nullopt for anything malformed (the record is a file attribute anyone may have edited).
  static std::optional<CacheRecord> decode(std::string_view text);
  bool operator==(const CacheRecord&) const = default;
};

// The directory a destination file goes in ("." for a bare file name).
std::filesystem::path directory_of(const std::filesystem::path& destination);

// 16 hex digits from the source's absolute path, size, mtime, inode and device.
std::string make_source_key(const std::filesystem::path& absolute_path, const struct stat& st);

// Attaches `record` (its placed_mtime_ns is taken from `file_fd` here) to the file open as
// `file_fd`, which will be (or is) `name` in directory `dir_fd`. Uses the xattr, else writes the
// sidecar; either way it removes a stale record of the other kind. Never throws: a copy without
// a record is merely not cached next time.
void attach_cache_record(int dir_fd, int file_fd, const std::string& name, CacheRecord record,
                         bool use_xattr = true);

// The record of the copy at `destination`, if it is a regular file (never a symlink) whose size
// and mtime still match what the record pinned; nullopt otherwise.
std::optional<CacheRecord> read_cache_record(const std::filesystem::path& destination);

}  // namespace imgcast::replicator
