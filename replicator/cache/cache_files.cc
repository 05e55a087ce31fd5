#include "replicator/cache/cache_files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "replicator/errors.h"
#include "replicator/image/file_trust.h"
#include "replicator/tree/dir_listing.h"

namespace imgcast::replicator::cache_files {

namespace {

constexpr std::size_t kMaxRecordBytes = 64 * 1024;  // kMaxEntrySources paths fit many times over
constexpr const char* kRecordSuffix = ".json";

std::int64_t mtime_of(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

}  // namespace

CacheLock::CacheLock(int fd) : fd_(fd) {
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno != EINTR) {
      throw TransferError(fmt::format("cannot lock the cache: {}", std::strerror(errno)));
    }
  }
}

CacheLock::~CacheLock() { (void)::flock(fd_, LOCK_UN); }

std::optional<EntryRecord> read_record(int entries_fd, const std::string& hex) {
  UniqueFd fd(::openat(entries_fd, (hex + kRecordSuffix).c_str(),
                       O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || file_distrust(st) ||
      static_cast<std::uint64_t>(st.st_size) > kMaxRecordBytes) {
    return std::nullopt;
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t have = 0;
  while (have < text.size()) {
    const ssize_t got = ::read(fd.get(), text.data() + have, text.size() - have);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      return std::nullopt;
    }
    have += static_cast<std::size_t>(got);
  }
  std::optional<EntryRecord> record = EntryRecord::decode(text);
  if (!record || record->digest.to_hex() != hex) {
    return std::nullopt;
  }
  return record;
}

void write_record(int entries_fd, const EntryRecord& record) {
  const std::string hex = record.digest.to_hex();
  const std::string temp = "." + hex + ".json.tmp";  // one writer at a time: the cache lock
  const std::string text = record.encode();
  (void)::unlinkat(entries_fd, temp.c_str(), 0);
  UniqueFd fd(::openat(entries_fd, temp.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  bool ok = fd.valid() && ::write(fd.get(), text.data(), text.size()) ==
                              static_cast<ssize_t>(text.size());
  ok = ok && ::renameat(entries_fd, temp.c_str(), entries_fd, (hex + kRecordSuffix).c_str()) == 0;
  if (!ok) {
    const int saved = errno;
    (void)::unlinkat(entries_fd, temp.c_str(), 0);
    throw TransferError(
        fmt::format("cannot write the cache record of {}: {}", hex, std::strerror(saved)));
  }
}

std::vector<std::string> entry_names(int entries_fd) {
  std::vector<std::string> names;
  const auto listing = list_directory(entries_fd);
  if (!listing) {
    return names;
  }
  const std::string suffix = kRecordSuffix;
  for (const std::string& name : *listing) {
    if (name.size() == 32 + suffix.size() && name.ends_with(suffix) &&
        ImageDigest::from_hex(std::string_view(name).substr(0, 32))) {
      names.push_back(name.substr(0, 32));
    }
  }
  return names;
}

std::optional<UniqueFd> open_entry_file(int entries_fd, const EntryRecord& record,
                                        std::string* why) {
  const std::string hex = record.digest.to_hex();
  UniqueFd fd(::openat(entries_fd, hex.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  struct stat st {};
  std::string reason;
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
    reason = fmt::format("its image is gone ({})", std::strerror(errno));
  } else if (const auto distrust = file_distrust(st)) {
    reason = "its image " + *distrust;
  } else if ((st.st_mode & 0222) != 0) {
    reason = fmt::format("its image was made writable (mode {:o})", st.st_mode & 07777);
  } else if (static_cast<std::uint64_t>(st.st_size) != record.bytes ||
             static_cast<std::uint64_t>(st.st_ino) != record.inode ||
             mtime_of(st) != record.mtime_ns) {
    reason = "its image changed since it was cached (size, inode or mtime differ)";
  } else {
    (void)::fcntl(fd.get(), F_SETFL, 0);  // O_NONBLOCK only kept a FIFO planted here from blocking
    return fd;
  }
  if (why != nullptr) {
    *why = reason;
  }
  return std::nullopt;
}

std::vector<std::string> manual_pins(int pins_fd, const std::string& hex) {
  std::vector<std::string> labels;
  const auto listing = list_directory(pins_fd);
  if (!listing) {
    return labels;
  }
  const std::string prefix = hex + ".";
  for (const std::string& name : *listing) {
    if (name.starts_with(prefix) && name.size() > prefix.size()) {
      labels.push_back(name.substr(prefix.size()));
    }
  }
  return labels;
}

bool held_by_a_process(int entries_fd, const std::string& hex) {
  UniqueFd fd(::openat(entries_fd, hex.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    return false;
  }
  // Exclusive and without waiting: it fails exactly when some process holds a shared pin.
  return ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0;  // released as `fd` closes
}

bool remove_unless_held(int entries_fd, const std::string& hex) {
  UniqueFd fd(::openat(entries_fd, hex.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (fd.valid() && ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    return false;
  }
  // Held exclusively (or gone) while it is unlinked: no pin can be taken on it meanwhile, as
  // pins are only taken under the cache lock our caller holds.
  (void)::unlinkat(entries_fd, hex.c_str(), 0);
  (void)::unlinkat(entries_fd, (hex + kRecordSuffix).c_str(), 0);
  return true;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace imgcast::replicator::cache_files
