// The node cache's files, one operation each, relative to the cache's open directories (never
// by path, so nothing swapped into the path later redirects them). Used by node_cache.cc and
// cache_maintenance.cc, always under the cache lock; not part of the cache's interface.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "replicator/cache/entry_record.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator::cache_files {

// The exclusive flock() on DIR/lock for one change. Waits: every holder only reads and renames
// a few small files, never while data moves. Throws TransferError when the lock fails.
class CacheLock {
 public:
  explicit CacheLock(int fd);
  ~CacheLock();
  CacheLock(const CacheLock&) = delete;
  CacheLock& operator=(const CacheLock&) = delete;

 private:
  int fd_;
};

// The record DIGEST.json in `entries_fd`, when it is ours, parses, and names that digest.
std::optional<EntryRecord> read_record(int entries_fd, const std::string& hex);
// Writes the record (a temporary file renamed over it). Throws TransferError.
void write_record(int entries_fd, const EntryRecord& record);
// The digests (hex) of every record in `entries_fd`.
std::vector<std::string> entry_names(int entries_fd);

// The entry's image, opened read-only, when it is ours, has no write bit, and its size, inode
// and mtime are the record's; otherwise nullopt and `why` says what differs.
std::optional<UniqueFd> open_entry_file(int entries_fd, const EntryRecord& record,
                                        std::string* why);

// The labels of the pins by hand on `hex` (pins/HEX.LABEL).
std::vector<std::string> manual_pins(int pins_fd, const std::string& hex);
// Whether a process holds a pin (a shared flock) on the entry now. Must be called under the
// cache lock: only then can no pin be taken between this test and what the caller does next.
bool held_by_a_process(int entries_fd, const std::string& hex);
// Removes the entry (image and record) when no process holds it: its exclusive flock is taken
// first and held across the unlink. False (nothing removed) when it is held.
bool remove_unless_held(int entries_fd, const std::string& hex);

// Nanoseconds since the epoch, wall clock: what last_used_ns and added_ns hold.
std::int64_t now_ns();

}  // namespace imgcast::replicator::cache_files
