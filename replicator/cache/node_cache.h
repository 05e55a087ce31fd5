// NodeCache: the node-local image cache that outlives a job (`imgcast replicate --cache`,
// `imgcast cache`). One directory per user and node, laid out as
//
//   DIR/lock                 flock()ed exclusively around every change: admit, commit, pin,
//                            evict, remove. Never held while data moves.
//   DIR/entries/DIGEST       an image, named by its whole-image xxh3-128 (identical content from
//                            two paths is stored once), read-only (0444)
//   DIR/entries/DIGEST.json  its record (entry_record.h): size, sources that found it, last use
//   DIR/pins/DIGEST.LABEL    a pin by hand (`imgcast cache pin`): lasts until unpinned
//   DIR/staging/             copies on their way in (StagedImage files) and one reservation per
//                            copy (JOB.reserve, flock()ed by its stager, holding its size)
//
// A job pins what it uses with a shared flock() on the entry's file: the kernel drops it when
// the last process holding the descriptor exits, so a pin of a process that died never lasts.
// Eviction takes the cache lock, then tries an exclusive flock() on the entry without waiting:
// an entry any job holds, or one pinned by hand, is never removed. Pins are only taken under
// the cache lock, so no pin can slip in between that test and the unlink.
//
// Last use is written by imgcast itself into the record (atime is unreliable with noatime).
//
// Trust: the directory and everything in it must be ours, writable by no one else
// (file_trust.h). An entry counts only when its file is ours, has no write bit, and its size,
// inode and mtime are still the record's: its bytes were verified against the digest when it
// was committed, and changing them takes a chmod and a write, which moves the mtime. So a hit is
// taken without re-reading the image. (ctime would be stronger but moves with every hard link,
// and a placed DST is often one.)
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "replicator/cache/entry_record.h"
#include "replicator/image/integrity.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

// A shared flock() on one entry: the entry is in use while this lives (or while any process
// that inherited `fd()` across fork/exec lives).
class EntryPin {
 public:
  EntryPin() = default;
  EntryPin(UniqueFd fd, std::filesystem::path path, EntryRecord record)
      : fd_(std::move(fd)), path_(std::move(path)), record_(std::move(record)) {}
  bool held() const noexcept { return fd_.valid(); }
  int fd() const noexcept { return fd_.get(); }
  const std::filesystem::path& path() const noexcept { return path_; }  // DIR/entries/DIGEST
  const EntryRecord& record() const noexcept { return record_; }
  // Lets the descriptor live on in a process this one execs (the hook's CMD): cleared O_CLOEXEC.
  void inherit_across_exec() const;

 private:
  UniqueFd fd_;
  std::filesystem::path path_;
  EntryRecord record_;
};

// Room made for a copy on its way in: counted against the budget until committed or dropped
// (the destructor removes it; a stager that died leaves a reservation whose lock is free, and
// the next admission removes it).
class CacheReservation {
 public:
  CacheReservation() = default;
  CacheReservation(UniqueFd fd, std::filesystem::path path, std::uint64_t bytes)
      : fd_(std::move(fd)), path_(std::move(path)), bytes_(bytes) {}
  CacheReservation(CacheReservation&&) noexcept = default;
  CacheReservation& operator=(CacheReservation&&) noexcept;
  ~CacheReservation();
  std::uint64_t bytes() const noexcept { return bytes_; }
  void release() noexcept;

 private:
  UniqueFd fd_;
  std::filesystem::path path_;
  std::uint64_t bytes_ = 0;
};

// One entry as `imgcast cache list` shows it.
struct CacheListing {
  EntryRecord record;
  std::vector<std::string> manual_pins;  // labels of DIR/pins/DIGEST.*
  bool in_use = false;                   // some process holds a pin on it now
};

class NodeCache {
 public:
  // Opens (creating with mode 0700 where missing, parents too) the cache at `dir`. Throws
  // SecurityError when it, or an entry's part of it, is not ours alone (file_trust.h);
  // InputError when it cannot be created.
  static NodeCache open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const noexcept { return dir_; }

  // The entry a source with this key (make_source_key) and size found before, pinned and its
  // last use set to now; nullopt when there is none, or it no longer holds what its record says
  // (then it is removed unless in use).
  std::optional<EntryPin> find_by_source(const std::string& source_key, std::uint64_t bytes);
  // The same by digest (or a unique prefix of its hex, for `imgcast cache pin`).
  std::optional<EntryPin> find_by_digest(const std::string& digest_hex);

  // Makes room for `bytes` before data moves: when the entries, the other copies on their way
  // in and this one would exceed `budget` (0: none), or the file system's free space, entries
  // no one uses go, least recently used first. Throws TransferError naming what stays pinned
  // when it still does not fit. `job_tag` names the reservation. (0 bytes: a reservation that
  // only marks the staging copy as a live run's, without evicting anything.)
  CacheReservation admit(std::uint64_t bytes, std::uint64_t budget, const std::string& job_tag);

  // Where a copy on its way in is staged (StagedImage's destination: its temporary file goes
  // beside it, in DIR/staging).
  std::filesystem::path staging_path(const std::string& job_tag) const;

  // Takes the committed copy at staging_path(job_tag), verified to hold `digest`, into the
  // cache: it becomes DIR/entries/DIGEST (or, when that entry exists already, the copy is
  // dropped and the entry gains this source). Returns the entry pinned. Throws TransferError.
  EntryPin commit(const std::string& job_tag, const ImageDigest& digest,
                  const std::string& source_key, const std::string& source_path);

  // Every entry, least recently used first.
  std::vector<CacheListing> list();
  // Removes the entry unless it is in use or pinned (then false, and `why` says which).
  bool remove(const std::string& digest_hex, std::string* why = nullptr);
  // Removes entries no one uses, least recently used first, until the rest fit in `max_bytes`
  // (nullopt: no size goal), and every entry last used before `older_than` (when given).
  // Returns the records removed.
  std::vector<EntryRecord> prune(std::optional<std::uint64_t> max_bytes,
                                 std::optional<std::int64_t> last_used_before_ns);
  // A pin by hand, until unpin(): `label` in [A-Za-z0-9_.-]. Throws InputError for an unknown
  // entry or a bad label.
  void pin(const std::string& digest_hex, const std::string& label);
  bool unpin(const std::string& digest_hex, const std::string& label);

 private:
  NodeCache() = default;
  std::optional<EntryPin> pin_entry(EntryRecord record);  // under the lock
  std::vector<CacheListing> list_locked();
  std::optional<std::string> resolve(const std::string& digest_hex);  // a unique prefix's entry
  void sweep_stale_reservations(std::uint64_t* live_bytes);

  std::filesystem::path dir_;
  UniqueFd dir_fd_;
  UniqueFd entries_fd_;
  UniqueFd pins_fd_;
  UniqueFd staging_fd_;
  UniqueFd lock_fd_;
};

// The cache directory when none is named: $IMGCAST_CACHE_DIR, else /tmp/imgcast-cache-UID
// (node-local on most clusters; ours alone, or refused).
std::filesystem::path default_cache_dir();

}  // namespace imgcast::replicator
