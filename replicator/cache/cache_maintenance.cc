// What `imgcast cache` does to one node's cache: list, remove, prune, pin and unpin by hand.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "replicator/cache/cache_files.h"
#include "replicator/cache/eviction.h"
#include "replicator/cache/node_cache.h"
#include "replicator/errors.h"
#include "replicator/log.h"

namespace imgcast::replicator {

using namespace cache_files;

namespace {

bool valid_label(const std::string& label) {
  return !label.empty() && label.size() <= 64 &&
         label.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
             std::string::npos &&
         label != "." && label != "..";
}

}  // namespace

std::vector<CacheListing> NodeCache::list_locked() {
  std::vector<CacheListing> listings;
  for (const std::string& hex : entry_names(entries_fd_.get())) {
    std::optional<EntryRecord> record = read_record(entries_fd_.get(), hex);
    if (!record) {
      continue;  // half-written or not ours: not an entry
    }
    CacheListing listing;
    listing.manual_pins = manual_pins(pins_fd_.get(), hex);
    listing.in_use = held_by_a_process(entries_fd_.get(), hex);
    listing.record = std::move(*record);
    listings.push_back(std::move(listing));
  }
  std::sort(listings.begin(), listings.end(), [](const CacheListing& a, const CacheListing& b) {
    return a.record.last_used_ns < b.record.last_used_ns;
  });
  return listings;
}

std::vector<CacheListing> NodeCache::list() {
  const CacheLock lock(lock_fd_.get());
  return list_locked();
}

std::optional<std::string> NodeCache::resolve(const std::string& digest_hex) {
  if (digest_hex.empty() || digest_hex.size() > 32) {
    return std::nullopt;
  }
  std::optional<std::string> found;
  for (const std::string& hex : entry_names(entries_fd_.get())) {
    if (hex.starts_with(digest_hex)) {
      if (found) {
        throw InputError(fmt::format("{} names more than one cache entry: give more digits",
                                     digest_hex));
      }
      found = hex;
    }
  }
  return found;
}

bool NodeCache::remove(const std::string& digest_hex, std::string* why) {
  const CacheLock lock(lock_fd_.get());
  const std::optional<std::string> hex = resolve(digest_hex);
  const auto say = [&](std::string text) {
    if (why != nullptr) {
      *why = std::move(text);
    }
    return false;
  };
  if (!hex) {
    return say(fmt::format("no cache entry {}", digest_hex));
  }
  if (const auto pins = manual_pins(pins_fd_.get(), *hex); !pins.empty()) {
    return say(fmt::format("{} is pinned ({}): unpin it first", *hex, fmt::join(pins, ", ")));
  }
  if (!remove_unless_held(entries_fd_.get(), *hex)) {
    return say(fmt::format("{} is in use by a running job", *hex));
  }
  return true;
}

std::vector<EntryRecord> NodeCache::prune(std::optional<std::uint64_t> max_bytes,
                                          std::optional<std::int64_t> last_used_before_ns) {
  const CacheLock lock(lock_fd_.get());
  const std::vector<CacheListing> entries = list_locked();
  std::vector<EvictionCandidate> candidates;
  for (const CacheListing& entry : entries) {
    candidates.push_back({&entry.record, entry.in_use || !entry.manual_pins.empty()});
  }
  std::vector<EntryRecord> removed;
  for (const std::size_t i : choose_prune(candidates, max_bytes, last_used_before_ns)) {
    if (remove_unless_held(entries_fd_.get(), entries[i].record.digest.to_hex())) {
      removed.push_back(entries[i].record);
    }
  }
  return removed;
}

void NodeCache::pin(const std::string& digest_hex, const std::string& label) {
  if (!valid_label(label)) {
    throw InputError(fmt::format("bad pin label {:?}: use letters, digits, _ . -", label));
  }
  const CacheLock lock(lock_fd_.get());
  const std::optional<std::string> hex = resolve(digest_hex);
  if (!hex || !read_record(entries_fd_.get(), *hex)) {
    throw InputError(fmt::format("no cache entry {} in {}", digest_hex, dir_.string()));
  }
  const std::string name = *hex + "." + label;
  UniqueFd fd(::openat(pins_fd_.get(), name.c_str(),
                       O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    throw TransferError(
        fmt::format("cannot pin {} in {}: {}", *hex, dir_.string(), std::strerror(errno)));
  }
}

bool NodeCache::unpin(const std::string& digest_hex, const std::string& label) {
  if (!valid_label(label)) {
    throw InputError(fmt::format("bad pin label {:?}: use letters, digits, _ . -", label));
  }
  const CacheLock lock(lock_fd_.get());
  const std::optional<std::string> hex = resolve(digest_hex);
  return hex && ::unlinkat(pins_fd_.get(), (*hex + "." + label).c_str(), 0) == 0;
}

}  // namespace imgcast::replicator
