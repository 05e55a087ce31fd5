#include "replicator/image/cache_record.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <sstream>

#include "replicator/log.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

namespace {

constexpr const char* kAttribute = "user.imgcast.cache";
constexpr std::size_t kMaxRecordBytes = 512;

std::string sidecar_name(const std::string& name) { return "." + name + ".imgcast-cache"; }

std::int64_t mtime_ns(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
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
  return fmt::format("imgcast-cache 1 {} {} {} {}", source_key, image_bytes, digest.to_hex(),
                     placed_mtime_ns);
}

std::optional<CacheRecord> CacheRecord::decode(std::string_view text) {
  if (text.size() > kMaxRecordBytes)
    return std::nullopt;
  std::istringstream in{std::string(text)};
  std::string magic, version, key, bytes, digest, mtime, extra;
  if (!(in >> magic >> version >> key >> bytes >> digest >> mtime) || (in >> extra) ||
      magic != "imgcast-cache" || version != "1" || !is_hex(key, 16) || !is_hex(digest, 32)) {
    return std::nullopt;
  }
  CacheRecord record;
  record.source_key = key;
  if (!parse_number(std::string_view(bytes), record.image_bytes) ||
      !parse_number(std::string_view(digest).substr(0, 16), record.digest.high, 16) ||
      !parse_number(std::string_view(digest).substr(16), record.digest.low, 16) ||
      !parse_number(std::string_view(mtime), record.placed_mtime_ns)) {
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
  UniqueFd out(::openat(dir_fd, sidecar.c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!out.valid() ||
      ::write(out.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    log().warn("cannot write the cache record {}: {}", sidecar, std::strerror(errno));
    ::unlinkat(dir_fd, sidecar.c_str(), 0);
  }
}

std::optional<CacheRecord> read_cache_record(const std::filesystem::path& destination) {
  UniqueFd fd(::open(destination.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return std::nullopt;
  char buffer[kMaxRecordBytes + 1];
  ssize_t n = ::fgetxattr(fd.get(), kAttribute, buffer, sizeof buffer);
  if (n < 0) {
    const auto dir = directory_of(destination);
    UniqueFd side(::open((dir / sidecar_name(destination.filename().string())).c_str(),
                         O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    n = side.valid() ? ::read(side.get(), buffer, sizeof buffer) : -1;
  }
  if (n <= 0)
    return std::nullopt;
  std::optional<CacheRecord> record =
      CacheRecord::decode(std::string_view(buffer, static_cast<std::size_t>(n)));
  if (!record || record->image_bytes != static_cast<std::uint64_t>(st.st_size) ||
      record->placed_mtime_ns != mtime_ns(st)) {
    return std::nullopt;
  }
  return record;
}

}  // namespace imgcast::replicator
