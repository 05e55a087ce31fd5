#include "replicator/cache/eviction.h"

#include <algorithm>
#include <numeric>

namespace imgcast::replicator {

namespace {

// Indices of the entries not in use, least recently used first (ties: the older addition).
std::vector<std::size_t> evictable_by_age(const std::vector<EvictionCandidate>& entries) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!entries[i].in_use) {
      order.push_back(i);
    }
  }
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const EntryRecord& ra = *entries[a].record;
    const EntryRecord& rb = *entries[b].record;
    return ra.last_used_ns != rb.last_used_ns ? ra.last_used_ns < rb.last_used_ns
                                              : ra.added_ns < rb.added_ns;
  });
  return order;
}

std::uint64_t total_bytes(const std::vector<EvictionCandidate>& entries) {
  return std::accumulate(entries.begin(), entries.end(), std::uint64_t{0},
                         [](std::uint64_t sum, const EvictionCandidate& c) {
                           return sum + c.record->bytes;
                         });
}

}  // namespace

std::optional<std::vector<std::size_t>> choose_evictions(
    const std::vector<EvictionCandidate>& entries, std::uint64_t incoming, std::uint64_t limit) {
  if (incoming > limit) {
    return std::nullopt;  // larger than the whole budget: nothing can make it fit
  }
  std::uint64_t staying = total_bytes(entries);
  std::vector<std::size_t> chosen;
  for (const std::size_t i : evictable_by_age(entries)) {
    if (staying <= limit - incoming) {
      break;
    }
    chosen.push_back(i);
    staying -= entries[i].record->bytes;
  }
  if (staying > limit - incoming) {
    return std::nullopt;
  }
  return chosen;
}

std::vector<std::size_t> choose_prune(const std::vector<EvictionCandidate>& entries,
                                      std::optional<std::uint64_t> max_bytes,
                                      std::optional<std::int64_t> last_used_before_ns) {
  std::uint64_t staying = total_bytes(entries);
  std::vector<std::size_t> chosen;
  for (const std::size_t i : evictable_by_age(entries)) {
    const bool too_old =
        last_used_before_ns && entries[i].record->last_used_ns < *last_used_before_ns;
    const bool over = max_bytes && staying > *max_bytes;
    if (!too_old && !over) {
      continue;  // not break: a later entry may still be too old (ages tie-break by addition)
    }
    chosen.push_back(i);
    staying -= entries[i].record->bytes;
  }
  return chosen;
}

}  // namespace imgcast::replicator
