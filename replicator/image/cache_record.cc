#include "replicator/image/cache_record.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <sstream>
#include <vector>

#include "replicator/image/file_trust.h"
#include "replicator/log.h"

namespace imgcast::replicator {

namespace {

constexpr const char* kAttribute = "user.imgcast.cache";
constexpr std::size_t kMaxRecordBytes = 512;
constexpr std::size_t kHashBlockBytes = 1 << 20;  // large enough for readahead, small for L2

std::string sidecar_name(const std::string& name) { return "." + name + ".imgcast-cache"; }

std::int64_t mtime_ns(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// The record was made for this very file, as it is now.
bool describes(const CacheRecord& record, const struct stat& st) {
  return record.image_bytes == static_cast<std::uint64_t>(st.st_size) &&
         record.placed_mtime_ns == mtime_ns(st) &&
         record.inode == static_cast<std::uint64_t>(st.st_ino) &&
         record.device == static_cast<std::uint64_t>(st.st_dev);
}

// A warning, not a debug line: a copy that is not ours where ours should be was probably
// planted, and the user should hear of it even though the node is simply sent the image.
void distrusted(const std::filesystem::path& destination, const std::string& what,
                const std::string& why) {
  log().warn("not trusting the cached copy {}: {} {}; sending the image again",
             destination.string(), what, why);
}

template <typename T>
bool parse_number(std::string_view text, T& out, int base = 10) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

bool is_hex(std::string_view text, std::size_t length) {
  return text.size() == length &&
         text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

}  // namespace

std::string CacheRecord::encode() const {
  return fmt::format("imgcast-cache 2 {} {} {} {} {} {}", source_key, image_bytes, digest.to_hex(),
                     placed_mtime_ns, inode, device);
}

std::optional<CacheRecord> CacheRecord::decode(std::string_view text) {
  if (text.size() > kMaxRecordBytes)
    return std::nullopt;
  std::istringstream in{std::string(text)};
  std::string magic, version, key, bytes, digest, mtime, inode, device, extra;
  if (!(in >> magic >> version >> key >> bytes >> digest >> mtime >> inode >> device) ||
      // A file's key is 16 hex digits, a tree's 32 (tree_source_key()): neither can match the other.
      (in >> extra) || magic != "imgcast-cache" || version != "2" ||
      !(is_hex(key, 16) || is_hex(key, 32)) ||
      !is_hex(digest, 32)) {
    return std::nullopt;
  }
  CacheRecord record;
  record.source_key = key;
  if (!parse_number(std::string_view(bytes), record.image_bytes) ||
      !parse_number(std::string_view(digest).substr(0, 16), record.digest.high, 16) ||
      !parse_number(std::string_view(digest).substr(16), record.digest.low, 16) ||
      !parse_number(std::string_view(mtime), record.placed_mtime_ns) ||
      !parse_number(std::string_view(inode), record.inode) ||
      !parse_number(std::string_view(device), record.device)) {
    return std::nullopt;
  }
  return record;
}

std::filesystem::path directory_of(const std::filesystem::path& destination) {
  return destination.has_parent_path() ? destination.parent_path() : std::filesystem::path(".");
}

std::string make_source_key(const std::filesystem::path& absolute_path, const struct stat& st) {
  const std::string identity = fmt::format("{}\n{}\n{}\n{}\n{}", absolute_path.string(), st.st_size,
                                           mtime_ns(st), static_cast<unsigned long long>(st.st_ino),
                                           static_cast<unsigned long long>(st.st_dev));
  return fmt::format("{:016x}", XXH3_64bits(identity.data(), identity.size()));
}

void attach_cache_record(int dir_fd, int file_fd, const std::string& name, CacheRecord record,
                         bool use_xattr) {
  struct stat st {};
  if (::fstat(file_fd, &st) != 0)
    return;
  record.placed_mtime_ns = mtime_ns(st);
  record.inode = static_cast<std::uint64_t>(st.st_ino);
  record.device = static_cast<std::uint64_t>(st.st_dev);
  const std::string text = record.encode();
  const std::string sidecar = sidecar_name(name);
  if (use_xattr && ::fsetxattr(file_fd, kAttribute, text.data(), text.size(), 0) == 0) {
    ::unlinkat(dir_fd, sidecar.c_str(), 0);  // a stale sidecar must not outlive this copy
    return;
  }
  if (use_xattr && errno != ENOTSUP && errno != EOPNOTSUPP) {
    log().warn("cannot record the cache attribute on {}: {}", name, std::strerror(errno));
  }
  // A stale attribute must not outlive this copy; most often there is none (ENODATA).
  (void)::fremovexattr(file_fd, kAttribute);
  // Written whole to a file of our own, then renamed over the name: a file or a symlink someone
  // planted under the sidecar's name is replaced, never written through (in a sticky directory
  // the rename of another user's file fails, and the copy is merely not cached next time).
  const std::string temporary = fmt::format("{}.{}.tmp", sidecar, ::getpid());
  UniqueFd out(::openat(dir_fd, temporary.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
  const bool written =
      out.valid() &&
      ::write(out.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
      ::renameat(dir_fd, temporary.c_str(), dir_fd, sidecar.c_str()) == 0;
  if (!written) {
    log().warn("cannot write the cache record {}: {}", sidecar, std::strerror(errno));
    if (out.valid())
      ::unlinkat(dir_fd, temporary.c_str(), 0);
  }
}

std::optional<CachedCopy> open_cached_copy(const std::filesystem::path& destination) {
  const std::string name = destination.filename().string();
  UniqueFd dir(::open(directory_of(destination).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct stat dir_st {};
  if (!dir.valid() || ::fstat(dir.get(), &dir_st) != 0)
    return std::nullopt;
  if (const auto why = directory_distrust(dir_st)) {
    distrusted(destination, directory_of(destination).string(), *why);
    return std::nullopt;
  }
  CachedCopy copy;
  copy.file.reset(
      ::openat(dir.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  struct stat st {};
  if (!copy.file.valid() || ::fstat(copy.file.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return std::nullopt;
  if (const auto why = file_distrust(st)) {
    distrusted(destination, destination.string(), *why);
    return std::nullopt;
  }
  char buffer[kMaxRecordBytes + 1];
  ssize_t n = ::fgetxattr(copy.file.get(), kAttribute, buffer, sizeof buffer);
  if (n < 0) {
    const std::string sidecar = sidecar_name(name);
    UniqueFd side(
        ::openat(dir.get(), sidecar.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    struct stat side_st {};
    if (!side.valid() || ::fstat(side.get(), &side_st) != 0)
      return std::nullopt;
    if (const auto why = file_distrust(side_st)) {
      distrusted(destination, (directory_of(destination) / sidecar).string(), *why);
      return std::nullopt;
    }
    n = ::read(side.get(), buffer, sizeof buffer);
  }
  if (n <= 0)
    return std::nullopt;
  std::optional<CacheRecord> record =
      CacheRecord::decode(std::string_view(buffer, static_cast<std::size_t>(n)));
  if (!record || !describes(*record, st))
    return std::nullopt;
  copy.record = std::move(*record);
  return copy;
}

bool content_matches(const CachedCopy& copy, const std::filesystem::path& destination) {
  const auto started = std::chrono::steady_clock::now();
  (void)::posix_fadvise(copy.file.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  ImageHasher hasher;
  std::vector<std::byte> buffer(kHashBlockBytes);
  std::uint64_t offset = 0;
  while (offset < copy.record.image_bytes) {
    const std::size_t want = static_cast<std::size_t>(
        std::min<std::uint64_t>(buffer.size(), copy.record.image_bytes - offset));
    const ssize_t n = ::pread(copy.file.get(), buffer.data(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      log().warn("cannot re-read the cached copy {}: {}; sending it again", destination.string(),
                 n < 0 ? std::strerror(errno) : "it is shorter than its record");
      return false;
    }
    hasher.update(std::span<const std::byte>(buffer.data(), static_cast<std::size_t>(n)));
    offset += static_cast<std::uint64_t>(n);
  }
  struct stat after {};
  if (::fstat(copy.file.get(), &after) != 0 || !describes(copy.record, after)) {
    log().warn("the cached copy {} changed while it was re-hashed; sending it again",
               destination.string());
    return false;
  }
  if (hasher.digest() != copy.record.digest) {
    log().warn(
        "the cached copy {} does not hold what its cache record says (re-hashed: {}, "
        "recorded: {}); sending it again",
        destination.string(), hasher.digest().to_hex(), copy.record.digest.to_hex());
    return false;
  }
  log().debug("re-hashed the cached copy {} ({} bytes) in {:.3f} s", destination.string(),
              copy.record.image_bytes,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return true;
}

std::optional<CacheRecord> read_cache_record(const std::filesystem::path& destination) {
  std::optional<CachedCopy> copy = open_cached_copy(destination);
  if (!copy || !content_matches(*copy, destination))
    return std::nullopt;
  return std::move(copy->record);
}

}  // namespace imgcast::replicator
