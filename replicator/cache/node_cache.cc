#include "replicator/cache/node_cache.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "replicator/cache/cache_files.h"
#include "replicator/cache/eviction.h"
#include "replicator/errors.h"
#include "replicator/image/file_trust.h"
#include "replicator/image/staged_image.h"
#include "replicator/log.h"
#include "replicator/tree/dir_listing.h"

namespace imgcast::replicator {

namespace fs = std::filesystem;
using namespace cache_files;

namespace {

constexpr const char* kReserveSuffix = ".reserve";

std::string describe_bytes(std::uint64_t bytes) {
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

// A directory of the cache: opened without following a symlink, and ours alone. Unlike a
// destination's directory, a sticky world-writable one is not enough: anyone could create the
// entries' names in it first.
UniqueFd open_own_directory(int parent_fd, const char* name, const fs::path& shown) {
  if (::mkdirat(parent_fd, name, 0700) != 0 && errno != EEXIST) {
    throw InputError(fmt::format("cannot create the cache directory {}: {}", shown.string(),
                                 std::strerror(errno)));
  }
  UniqueFd fd(::openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
    throw InputError(fmt::format("cannot open the cache directory {}: {}", shown.string(),
                                 std::strerror(errno)));
  }
  if (st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    throw SecurityError(fmt::format(
        "the cache directory {} is not ours alone (uid {}, mode {:o}; it must be uid {} and "
        "writable by no one else): refusing to use it",
        shown.string(), st.st_uid, st.st_mode & 07777, ::geteuid()));
  }
  return fd;
}

bool valid_tag(const std::string& tag) {
  return !tag.empty() && tag.size() <= 64 &&
         tag.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
             std::string::npos;
}

}  // namespace

void EntryPin::inherit_across_exec() const {
  if (fd_.valid()) {
    const int flags = ::fcntl(fd_.get(), F_GETFD);
    (void)::fcntl(fd_.get(), F_SETFD, flags & ~FD_CLOEXEC);  // no pin then: logged by no one
  }
}

CacheReservation& CacheReservation::operator=(CacheReservation&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = std::move(other.fd_);
    path_ = std::move(other.path_);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

CacheReservation::~CacheReservation() { release(); }

void CacheReservation::release() noexcept {
  if (fd_.valid()) {
    std::error_code ignored;  // a reservation left behind is swept by the next admission
    fs::remove(path_, ignored);
    fd_.reset();
  }
}

NodeCache NodeCache::open(const fs::path& dir) {
  NodeCache cache;
  cache.dir_ = dir;
  std::error_code error;
  if (dir.has_parent_path()) {
    fs::create_directories(dir.parent_path(), error);  // the parents as the umask says
  }
  const std::string name = dir.filename().string();
  UniqueFd parent(::open(dir.has_parent_path() ? dir.parent_path().c_str() : ".",
                         O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent.valid()) {
    throw InputError(fmt::format("cannot open the cache's parent directory {}: {}",
                                 dir.parent_path().string(), std::strerror(errno)));
  }
  cache.dir_fd_ = open_own_directory(parent.get(), name.c_str(), dir);
  cache.entries_fd_ = open_own_directory(cache.dir_fd_.get(), "entries", dir / "entries");
  cache.pins_fd_ = open_own_directory(cache.dir_fd_.get(), "pins", dir / "pins");
  cache.staging_fd_ = open_own_directory(cache.dir_fd_.get(), "staging", dir / "staging");
  cache.lock_fd_.reset(
      ::openat(cache.dir_fd_.get(), "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  struct stat st {};
  if (!cache.lock_fd_.valid() || ::fstat(cache.lock_fd_.get(), &st) != 0) {
    throw InputError(fmt::format("cannot open the cache's lock {}: {}", (dir / "lock").string(),
                                 std::strerror(errno)));
  }
  if (const auto distrust = file_distrust(st)) {
    throw SecurityError(
        fmt::format("the cache's lock {} {}: refusing it", (dir / "lock").string(), *distrust));
  }
  return cache;
}

std::optional<EntryPin> NodeCache::pin_entry(EntryRecord record) {
  const std::string hex = record.digest.to_hex();
  std::string why;
  std::optional<UniqueFd> fd = open_entry_file(entries_fd_.get(), record, &why);
  if (!fd) {
    log().warn("cache entry {} in {} is not used: {}", hex, dir_.string(), why);
    if (remove_unless_held(entries_fd_.get(), hex)) {
      log().info("removed cache entry {}", hex);
    }
    return std::nullopt;
  }
  // Shared: any number of jobs may use an entry at once; eviction needs it exclusively. Cannot
  // block: an exclusive holder holds the cache lock too, which we have.
  if (::flock(fd->get(), LOCK_SH | LOCK_NB) != 0) {
    return std::nullopt;
  }
  record.last_used_ns = now_ns();
  try {
    write_record(entries_fd_.get(), record);
  } catch (const TransferError& error) {
    log().warn("{} (its last use stays as it was)", error.what());  // the pin still holds
  }
  return EntryPin(std::move(*fd), dir_ / "entries" / hex, std::move(record));
}

std::optional<EntryPin> NodeCache::find_by_source(const std::string& source_key,
                                                  std::uint64_t bytes) {
  if (source_key.empty()) {
    return std::nullopt;
  }
  const CacheLock lock(lock_fd_.get());
  for (const std::string& hex : entry_names(entries_fd_.get())) {
    std::optional<EntryRecord> record = read_record(entries_fd_.get(), hex);
    if (record && record->bytes == bytes &&
        std::any_of(record->sources.begin(), record->sources.end(),
                    [&](const EntrySource& s) { return s.key == source_key; })) {
      return pin_entry(std::move(*record));
    }
  }
  return std::nullopt;
}

std::optional<EntryPin> NodeCache::find_by_digest(const std::string& digest_hex) {
  const CacheLock lock(lock_fd_.get());
  const std::optional<std::string> hex = resolve(digest_hex);
  if (!hex) {
    return std::nullopt;
  }
  std::optional<EntryRecord> record = read_record(entries_fd_.get(), *hex);
  return record ? pin_entry(std::move(*record)) : std::nullopt;
}

void NodeCache::sweep_stale_reservations(std::uint64_t* live_bytes) {
  *live_bytes = 0;
  const auto listing = list_directory(staging_fd_.get());
  if (!listing) {
    return;
  }
  for (const std::string& name : *listing) {
    if (!name.ends_with(kReserveSuffix)) {
      // A copy committed into staging whose run holds no reservation any more (it died between
      // the two renames): nobody will take it into the cache. Staging files (".*.tmp") are
      // StagedImage's to sweep.
      if (!name.starts_with(".") &&
          std::find(listing->begin(), listing->end(), name + kReserveSuffix) == listing->end()) {
        (void)::unlinkat(staging_fd_.get(), name.c_str(), 0);
      }
      continue;
    }
    UniqueFd fd(
        ::openat(staging_fd_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd.valid()) {
      continue;
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      char text[32] = {};  // a live stager's size, as it wrote it
      const ssize_t got = ::pread(fd.get(), text, sizeof text - 1, 0);
      *live_bytes += got > 0 ? std::strtoull(text, nullptr, 10) : 0;
      continue;
    }
    // Its stager died: its reservation and any copy it had committed into staging go.
    const std::string job = name.substr(0, name.size() - std::strlen(kReserveSuffix));
    (void)::unlinkat(staging_fd_.get(), job.c_str(), 0);
    (void)::unlinkat(staging_fd_.get(), name.c_str(), 0);
    log().info("removed the stale cache reservation {} in {}", name, dir_.string());
  }
}

CacheReservation NodeCache::admit(std::uint64_t bytes, std::uint64_t budget,
                                  const std::string& job_tag) {
  if (!valid_tag(job_tag)) {
    throw InputError(fmt::format("bad job tag {:?} for the cache", job_tag));
  }
  const CacheLock lock(lock_fd_.get());
  std::uint64_t reserved = 0;
  sweep_stale_reservations(&reserved);
  const std::vector<CacheListing> entries = list_locked();
  std::vector<EvictionCandidate> candidates;
  std::uint64_t cached = 0;
  for (const CacheListing& entry : entries) {
    candidates.push_back({&entry.record, entry.in_use || !entry.manual_pins.empty()});
    cached += entry.record.bytes;
  }
  // Two limits, the tighter wins: the budget (less what copies on their way in hold), and what
  // the file system can take (what is cached now and its free space).
  std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
  if (budget != 0) {
    limit = budget > reserved ? budget - reserved : 0;
  }
  std::optional<std::uint64_t> disk_free;  // set when the file system is the tighter limit
  if (const auto free = free_bytes(staging_fd_.get()); free && cached + *free < limit) {
    limit = cached + *free;
    disk_free = free;
  }
  const auto evict = choose_evictions(candidates, bytes, limit);
  if (!evict) {
    std::uint64_t pinned = 0;
    for (const EvictionCandidate& c : candidates) {
      pinned += c.in_use ? c.record->bytes : 0;
    }
    throw TransferError(fmt::format(
        "the cache {} cannot take {}: {} of it is in entries in use or pinned{}{}{}", dir_.string(),
        describe_bytes(bytes), describe_bytes(pinned),
        disk_free ? fmt::format(", {} is free on its file system", describe_bytes(*disk_free))
                  : std::string(),
        budget != 0 ? fmt::format(", the budget is {}", describe_bytes(budget)) : std::string(),
        reserved != 0
            ? fmt::format(", {} is held by copies on their way in", describe_bytes(reserved))
            : std::string()));
  }
  for (const std::size_t i : *evict) {
    const std::string hex = entries[i].record.digest.to_hex();
    if (remove_unless_held(entries_fd_.get(), hex)) {
      log().info("evicted cache entry {} ({}, last used {} s ago) to make room", hex,
                 describe_bytes(entries[i].record.bytes),
                 (now_ns() - entries[i].record.last_used_ns) / 1'000'000'000);
    }
  }
  const std::string name = job_tag + kReserveSuffix;
  UniqueFd fd(::openat(staging_fd_.get(), name.c_str(),
                       O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid() || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    throw TransferError(fmt::format("cannot reserve room in the cache {}: {}", dir_.string(),
                                    std::strerror(errno)));
  }
  const std::string size_text = std::to_string(bytes);
  if (::pwrite(fd.get(), size_text.data(), size_text.size(), 0) !=
      static_cast<ssize_t>(size_text.size())) {
    (void)::unlinkat(staging_fd_.get(), name.c_str(), 0);
    throw TransferError(fmt::format("cannot reserve room in the cache {}: {}", dir_.string(),
                                    std::strerror(errno)));
  }
  return CacheReservation(std::move(fd), dir_ / "staging" / name, bytes);
}

fs::path NodeCache::staging_path(const std::string& job_tag) const {
  return dir_ / "staging" / job_tag;
}

EntryPin NodeCache::commit(const std::string& job_tag, const ImageDigest& digest,
                           const std::string& source_key, const std::string& source_path) {
  const std::string hex = digest.to_hex();
  const CacheLock lock(lock_fd_.get());
  std::optional<EntryRecord> existing = read_record(entries_fd_.get(), hex);
  if (existing && open_entry_file(entries_fd_.get(), *existing, nullptr)) {
    // The same bytes came from another path, or another job was first: stored once.
    (void)::unlinkat(staging_fd_.get(), job_tag.c_str(), 0);
  } else {
    UniqueFd staged(::openat(staging_fd_.get(), job_tag.c_str(),
                             O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    struct stat st {};
    if (!staged.valid() || ::fchmod(staged.get(), 0444) != 0 ||
        ::renameat(staging_fd_.get(), job_tag.c_str(), entries_fd_.get(), hex.c_str()) != 0 ||
        ::fsync(entries_fd_.get()) != 0 || ::fstat(staged.get(), &st) != 0) {
      const int saved = errno;
      (void)::unlinkat(staging_fd_.get(), job_tag.c_str(), 0);
      throw TransferError(fmt::format("cannot take the copy into the cache {}: {}", dir_.string(),
                                      std::strerror(saved)));
    }
    existing = EntryRecord{};
    existing->digest = digest;
    existing->bytes = static_cast<std::uint64_t>(st.st_size);
    existing->inode = static_cast<std::uint64_t>(st.st_ino);
    existing->mtime_ns =
        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    existing->added_ns = now_ns();
  }
  auto& sources = existing->sources;
  std::erase_if(sources, [&](const EntrySource& s) { return s.key == source_key; });
  if (!source_key.empty()) {
    sources.push_back({source_key, source_path});
  }
  if (sources.size() > kMaxEntrySources) {
    sources.erase(sources.begin(), sources.end() - kMaxEntrySources);
  }
  write_record(entries_fd_.get(), *existing);
  std::optional<EntryPin> pin = pin_entry(std::move(*existing));
  if (!pin) {
    throw TransferError(
        fmt::format("the cache entry {} in {} could not be used right after it "
                    "was committed",
                    hex, dir_.string()));
  }
  return std::move(*pin);
}

fs::path default_cache_dir() {
  if (const char* dir = std::getenv("IMGCAST_CACHE_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  return fmt::format("/tmp/imgcast-cache-{}", ::geteuid());
}

}  // namespace imgcast::replicator
