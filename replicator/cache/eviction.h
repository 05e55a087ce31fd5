// The budget's rule, pure: which entries go so that a new image fits. Least recently used
// first, and never an entry in use (pinned by a job or by hand).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "replicator/cache/entry_record.h"

namespace imgcast::replicator {

struct EvictionCandidate {
  const EntryRecord* record = nullptr;
  bool in_use = false;  // pinned: never chosen
};

// Indices into `entries` to evict, least recently used first, so that the bytes that stay plus
// `incoming` fit in `limit`; empty when they fit already. nullopt when even evicting every entry
// not in use is not enough.
std::optional<std::vector<std::size_t>> choose_evictions(
    const std::vector<EvictionCandidate>& entries, std::uint64_t incoming, std::uint64_t limit);

// The same rule for `imgcast cache prune`: entries not in use, least recently used first, until
// the rest fit in `max_bytes` (nullopt: no size goal), plus every one not in use last used before
// `last_used_before_ns` (nullopt: no age goal). Never fails: what is in use stays.
std::vector<std::size_t> choose_prune(const std::vector<EvictionCandidate>& entries,
                                      std::optional<std::uint64_t> max_bytes,
                                      std::optional<std::int64_t> last_used_before_ns);

}  // namespace imgcast::replicator
