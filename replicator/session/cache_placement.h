// CachePlacement: a node's part of a `--cache` run, the same on the root and every agent. The
// copy goes into the node's cache (node_cache.h), and DST, when one is named, is placed from the
// entry (entry_placement.h: a reflink or hard link, a copy only across file systems). The
// entry stays pinned while this object lives, so no other job's eviction removes it mid-run.
//
// A node whose cache holds the source already (same source key and size, and the entry still
// what its record says) answers from it without data; any other makes room under the budget
// before data moves (a node that cannot, because what is pinned fills it, fails alone) and
// stages its copy inside the cache.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "replicator/cache/node_cache.h"
#include "replicator/image/staged_image.h"

namespace imgcast::replicator {

struct CacheTarget {
  std::filesystem::path cache_dir;
  std::uint64_t budget = 0;   // bytes; 0: none but the file system's
  std::string destination;    // this node's DST (expanded); empty: the cache alone
  mode_t mode = 0644;         // of DST when it is a copy (a hard link shares the entry's 0444)
  bool follow_symlinks = false;
  std::string job_tag;
  std::string source_key;
  std::string source_path;    // for `imgcast cache list`
  // Told the pinned entry's descriptor once this node's copy is the entry (after find() hits,
  // or place()): to keep it in use beyond the run. Optional.
  std::function<void(int entry_fd)> keep_pin;
};

class CachePlacement {
 public:
  // Opens (creates) the cache. Throws SecurityError for a cache that is not ours alone,
  // InputError when it cannot be created.
  explicit CachePlacement(CacheTarget target);

  // The entry this source found before, pinned, with DST placed from it: its digest. nullopt
  // when the cache does not hold it (or `force`).
  std::optional<ImageDigest> find(std::uint64_t image_bytes, bool force);
  // The entry pinned by find() or place(), if any.
  const EntryPin* entry() const noexcept { return pin_ ? &*pin_ : nullptr; }

  // Makes room (evicting least recently used entries no one uses) and stages the copy inside
  // the cache. When find() pinned the entry already (this node is the root, serving others from
  // its cache), the copy is only the transfer's buffer: nothing is reserved for it and place()
  // drops it. Throws TransferError when it does not fit.
  StagedImage stage(std::uint64_t image_bytes, StagedImage::Reserve reserve);

  // The verified copy into the cache (or dropped when the entry exists), then DST from it. On
  // the placement thread. Throws TransferError / InputError / SecurityError.
  void place(StagedImage& image, const ImageDigest& digest);

 private:
  void place_destination();  // DST from the pinned entry, then the pin handed to keep_pin

  CacheTarget target_;
  NodeCache cache_;
  std::optional<EntryPin> pin_;
  CacheReservation room_;
};

}  // namespace imgcast::replicator
