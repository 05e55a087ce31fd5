// The node-local cache: when a copy is placed, a small record is attached to it (the xattr
// user.imgcast.cache, or a sidecar file ".NAME.imgcast-cache" where the file system has no user
// xattrs) saying which source it came from and what it holds. A later run whose source has the
// same key (path, size, mtime, inode, device: decided without reading the source) and whose copy
// still holds that record skips the node; when every node is skipped the source is not read at
// all.
//
// The record binds the copy's identity (size, mtime in ns, inode, device) and its digest, but
// anyone can write such a record: the key comes from stat() alone and the digest is public. So a
// record counts only when the copy and its sidecar are ours and no one else could have written
// or swapped them (file_trust.h), and a hit is confirmed against the bytes themselves: the copy
// is re-hashed (xxh3-128, ~0.3-0.5 s per GiB from the page cache) and must give the digest the
// record names. A MAC over the record would be cheaper but needs a per-user key on every node;
// the re-hash needs no secret and also catches a copy changed without changing its mtime.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "replicator/image/integrity.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

struct CacheRecord {
  std::string source_key;            // make_source_key(), or tree_source_key() for a tree
  std::uint64_t image_bytes = 0;     // the copy's size
  ImageDigest digest;                // the copy's verified xxh3-128
  std::int64_t placed_mtime_ns = 0;  // the copy's mtime when it was placed
  std::uint64_t inode = 0;           // the copy's inode and device when it was placed: a record
  std::uint64_t device = 0;          // copied onto another file does not describe that file

  // "imgcast-cache 2 <key> <bytes> <digest hex> <mtime ns> <inode> <device>"
  std::string encode() const;
  // nullopt for anything malformed (the record is a file attribute anyone may have edited), and
  // for version 1 records (no inode or device: such a copy is sent once more).
  static std::optional<CacheRecord> decode(std::string_view text);
  bool operator==(const CacheRecord&) const = default;
};

// The directory a destination file goes in ("." for a bare file name).
std::filesystem::path directory_of(const std::filesystem::path& destination);

// 16 hex digits from the source's absolute path, size, mtime, inode and device.
std::string make_source_key(const std::filesystem::path& absolute_path, const struct stat& st);

// Attaches `record` (its mtime, inode and device are taken from `file_fd` here) to the file open
// as `file_fd`, which will be (or is) `name` in directory `dir_fd`. Uses the xattr, else writes
// the sidecar (a temporary file renamed over it, never through a link); either way it removes a
// stale record of the other kind. Never throws: a copy without a record is merely not cached
// next time.
void attach_cache_record(int dir_fd, int file_fd, const std::string& name, CacheRecord record,
                         bool use_xattr = true);

// A copy at a destination that is ours, with a record that still describes it, still open.
struct CachedCopy {
  CacheRecord record;
  UniqueFd file;
};

// The copy at `destination` and its record, when the copy is a regular file (never followed
// through a symlink) and both pass file_trust.h in a directory that does too, and the record's
// size, mtime, inode and device are the copy's. nullopt otherwise (logged when something there
// is not ours). Its bytes are not read: see content_matches.
std::optional<CachedCopy> open_cached_copy(const std::filesystem::path& destination);

// Re-reads the whole copy and compares its xxh3-128 with the record's digest (and that the copy
// did not change meanwhile). Logs why not.
bool content_matches(const CachedCopy& copy, const std::filesystem::path& destination);

// open_cached_copy() and content_matches(): the record of a copy that holds what it says.
std::optional<CacheRecord> read_cache_record(const std::filesystem::path& destination);

}  // namespace imgcast::replicator
