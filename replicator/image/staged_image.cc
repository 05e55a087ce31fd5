#include "replicator/image/staged_image.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <random>
#include <utility>

#include "replicator/errors.h"
#include "replicator/image/available_memory.h"
#include "replicator/image/staging_sweep.h"
#include "replicator/log.h"
#include "replicator/stop_signal.h"

namespace imgcast::replicator {

namespace fs = std::filesystem;

namespace {

std::string describe_errno(int error) { return std::strerror(error); }

std::string sanitized(const std::string& tag) {
  std::string out;
  for (char c : tag) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_';
    out.push_back(safe ? c : '_');
  }
  return out;
}

}  // namespace

void refuse_symlinked_directory(const fs::path& destination) {
  // The directory the user named must be the directory written: a symlink on the way
  // (/scratch -> /lustre/..., a planted link) would put the copy somewhere else.
  const fs::path dir = directory_of(destination);
  char real[PATH_MAX];
  std::error_code error;
  std::string named = fs::absolute(dir, error).lexically_normal().string();
  while (named.size() > 1 && named.back() == '/')
    named.pop_back();
  if (!error && ::realpath(dir.c_str(), real) != nullptr && named != real) {
    throw SecurityError(fmt::format(
        "destination directory {} resolves through a symlink to {}: name {} instead, or pass "
        "--follow-symlinks",
        dir.string(), real, real));
  }
}

std::optional<std::uint64_t> free_bytes(int fd) {
  struct statvfs space {};
  if (::fstatvfs(fd, &space) != 0) {
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(space.f_bavail) * space.f_frsize;
}

std::optional<std::uint64_t> free_bytes(const fs::path& path) {
  struct statvfs space {};
  if (::statvfs(path.c_str(), &space) != 0) {
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(space.f_bavail) * space.f_frsize;
}

UniqueFd open_destination_directory(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.valid()) {
    return fd;
  }
  const int error = errno;
  if (error == ENOENT) {
    throw InputError(
        fmt::format("destination directory {} does not exist: create it first", dir.string()));
  }
  if (error == ENOTDIR) {
    throw InputError(fmt::format(
        "destination directory {} is not a directory: name a file in a directory", dir.string()));
  }
  if (error == EACCES || error == EPERM) {
    throw InputError(fmt::format(
        "destination directory {} is not accessible: check its permissions", dir.string()));
  }
  throw InputError(
      fmt::format("cannot open destination directory {}: {}", dir.string(), describe_errno(error)));
}

StagedImage StagedImage::create(const fs::path& destination, std::uint64_t size,
                                const std::string& job_tag, mode_t mode, bool follow_symlinks,
                                Reserve reserve) {
  const std::string name = destination.filename().string();
  if (name.empty() || name == "." || name == "..") {
    throw InputError(
        fmt::format("destination {} does not name a file: add the file name, e.g. {}/image.sif",
                    destination.string(), destination.string()));
  }
  const fs::path dir = directory_of(destination);

  StagedImage image;
  image.destination_ = destination;
  image.final_name_ = name;
  image.mode_ = mode;
  image.dir_fd_ = open_destination_directory(dir);
  if (!follow_symlinks) {
    refuse_symlinked_directory(destination);
  }
  struct stat existing {};
  if (::fstatat(image.dir_fd_.get(), name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISDIR(existing.st_mode)) {
    throw InputError(
        fmt::format("destination {} is a directory: name the file to create, e.g. {}/image.sif",
                    destination.string(), destination.string()));
  }

  // Staging files of runs that died (SIGKILL, a crash) would fill the disk over time: their
  // owner's lock is gone, so they go now (staging_sweep.h).
  (void)sweep_stale_staging(image.dir_fd_.get(), dir.string());

  // A temporary file another live run holds must not block this one: try other suffixes.
  const std::string base = "." + name + ".imgcast-" + sanitized(job_tag);
  std::mt19937 random(std::random_device{}());
  for (int attempt = 0; attempt < 16 && !image.file_fd_.valid(); ++attempt) {
    std::string candidate =
        attempt == 0 ? base + ".tmp" : fmt::format("{}-{:x}.tmp", base, random());
    image.file_fd_.reset(::openat(image.dir_fd_.get(), candidate.c_str(),
                                  O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (image.file_fd_.valid() &&
        !claim_staging_file(image.dir_fd_.get(), candidate, image.file_fd_.get())) {
      // A sweep removed it before our lock was on (it was unlocked for an instant): the name is
      // not ours any more, so another is tried.
      image.file_fd_.reset();
      continue;
    }
    if (image.file_fd_.valid()) {
      // Only a name we created becomes ours to remove: on any failure before this point the
      // destructor must not unlink someone else's file (another run's temporary, say).
      image.temp_name_ = std::move(candidate);
    } else if (errno != EEXIST) {
      const int error = errno;
      if (error == EACCES || error == EPERM || error == EROFS) {
        throw InputError(fmt::format("destination directory {} is not writable: {}", dir.string(),
                                     describe_errno(error)));
      }
      if (error == ENAMETOOLONG) {
        // The temporary name adds ~20 characters to the file name.
        throw InputError(fmt::format("destination name {} is too long: use a shorter file name",
                                     destination.string()));
      }
      throw TransferError(fmt::format("cannot create a temporary file in {}: {}", dir.string(),
                                      describe_errno(error)));
    }
  }
  if (image.file_fd_.valid()) {
    image.signal_slot_ = register_temporary(image.dir_fd_.get(), image.temp_name_);
  } else {
    throw TransferError(
        fmt::format("cannot create a temporary file in {}: too many stale "
                    "{}* files; remove them",
                    dir.string(), base));
  }

  image.reserve_bytes_ = size;
  if (reserve == Reserve::kNow) {
    image.reserve();
  }
  return image;
}

StagedImage StagedImage::create_in_memory(const fs::path& destination, std::uint64_t size,
                                          Reserve reserve) {
  StagedImage image;
  image.destination_ = destination;
  image.memfd_ = true;
  image.in_memory_ = true;
  image.space_ = Space::kChecked;  // PageRunner allocates the pages a step ahead of the data
  image.file_fd_.reset(::memfd_create("imgcast-stream", MFD_CLOEXEC));
  if (!image.file_fd_.valid()) {
    throw TransferError(fmt::format("cannot create memory for the stream of {}: {}",
                                    destination.string(), describe_errno(errno)));
  }
  image.reserve_bytes_ = size;
  if (reserve == Reserve::kNow) {
    image.reserve();
  }
  return image;
}

std::string StagedImage::where() const {
  return memfd_ ? std::string("memory") : directory_of(destination_).string();
}

void StagedImage::reserve() {
  if (reserve_bytes_ == 0 || data_ != nullptr) {
    return;
  }
  const std::string dir_name = where();
  if (memfd_) {
    // The machine's memory, not a file system's: a memfd's tmpfs has no size of its own.
    if (const auto free = available_memory_bytes(); free && *free < reserve_bytes_) {
      throw TransferError(
          fmt::format("no memory for {} bytes ({} bytes available)", reserve_bytes_, *free));
    }
    size_file(dir_name);
  } else {
    reserve_in_file(dir_name);
  }
  void* data =
      ::mmap(nullptr, reserve_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, file_fd_.get(), 0);
  if (data == MAP_FAILED) {
    throw TransferError(
        fmt::format("cannot map the temporary file in {}: {}", dir_name, describe_errno(errno)));
  }
  data_ = static_cast<std::byte*>(data);
  size_ = reserve_bytes_;
}

void StagedImage::reserve_in_file(const std::string& dir_name) {
  struct statfs fs {};
  if (::fstatfs(file_fd_.get(), &fs) == 0) {
    in_memory_ = memory_file_system(fs.f_type);
    if (fs.f_type == TMPFS_MAGIC) {
      space_ = Space::kChecked;
    }
  }
  if (space_ == Space::kChecked) {
    // fallocate on tmpfs allocates and zeroes every page (~0.4 s per GiB per copy): setup would
    // grow with the image. The free space is checked now instead, so a too-small tmpfs still
    // fails before data moves, and PageRunner allocates the pages a step ahead of the data.
    if (const auto free = free_bytes(file_fd_.get()); free && *free < reserve_bytes_) {
      throw TransferError(fmt::format(
          "no space for {} bytes in {} ({} bytes free): free space or pick another destination",
          reserve_bytes_, dir_name, *free));
    }
    size_file(dir_name);
  } else if (::fallocate(file_fd_.get(), 0, 0, static_cast<off_t>(reserve_bytes_)) != 0) {
    // On extent filesystems (ext4, xfs, btrfs) this reserves every block in milliseconds, and
    // a full disk fails here, before any data moves.
    const int error = errno;
    if (error == EOPNOTSUPP || error == ENOSYS) {
      log().warn("{} cannot preallocate (fallocate unsupported); a full disk will show late",
                 dir_name);
      space_ = Space::kUnchecked;
      size_file(dir_name);
    } else if (error == ENOSPC || error == EDQUOT) {
      throw TransferError(
          fmt::format("no space for {} bytes in {}: free space or pick another destination",
                      reserve_bytes_, dir_name));
    } else {
      throw TransferError(fmt::format("cannot reserve {} bytes in {}: {}", reserve_bytes_, dir_name,
                                      describe_errno(error)));
    }
  }
}

void StagedImage::size_file(const std::string& dir_name) {
  if (::ftruncate(file_fd_.get(), static_cast<off_t>(reserve_bytes_)) != 0) {
    throw TransferError(
        fmt::format("cannot size the temporary file in {}: {}", dir_name, describe_errno(errno)));
  }
}

StagedImage::StagedImage(StagedImage&& other) noexcept
    : destination_(std::move(other.destination_)),
      final_name_(std::move(other.final_name_)),
      temp_name_(std::move(other.temp_name_)),
      dir_fd_(std::move(other.dir_fd_)),
      file_fd_(std::move(other.file_fd_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      reserve_bytes_(other.reserve_bytes_),
      space_(other.space_),
      in_memory_(other.in_memory_),
      memfd_(other.memfd_),
      mode_(other.mode_),
      committed_(other.committed_),
      removed_(std::exchange(other.removed_, true)),
      signal_slot_(std::exchange(other.signal_slot_, -1)) {}

StagedImage::~StagedImage() {
  if (data_ != nullptr) {
    ::munmap(data_, size_);
  }
  discard();
}

void StagedImage::commit(const CacheRecord* cache) {
  if (memfd_) {
    throw std::logic_error("StagedImage::commit of scratch memory (create_in_memory)");
  }
  if (committed_ || removed_) {
    throw TransferError(fmt::format("{} was already placed or discarded", destination_.string()));
  }
  // On Linux, fsync of the file also writes back pages dirtied through a MAP_SHARED mapping
  // (one page cache), so no msync is needed.
  if (::fsync(file_fd_.get()) != 0) {
    throw TransferError(
        fmt::format("cannot flush {} to disk: {}", destination_.string(), describe_errno(errno)));
  }
  if (::fchmod(file_fd_.get(), mode_) != 0) {
    throw TransferError(fmt::format("cannot set mode {:o} on {}: {}", mode_, destination_.string(),
                                    describe_errno(errno)));
  }
  if (cache != nullptr) {
    // Before the rename: the attribute travels with the inode, so the copy never shows without it.
    attach_cache_record(dir_fd_.get(), file_fd_.get(), final_name_, *cache);
  }
  // rename replaces whatever is at the final name, a symlink included, and never follows it.
  if (::renameat(dir_fd_.get(), temp_name_.c_str(), dir_fd_.get(), final_name_.c_str()) != 0) {
    throw TransferError(
        fmt::format("cannot place {}: {}", destination_.string(), describe_errno(errno)));
  }
  committed_ = true;
  unregister_temporary(signal_slot_);
  // A staging file's lock says "a live run owns this"; placed, it is a file like any other, and
  // whoever uses it next (the node cache's pins) may lock it.
  (void)::flock(file_fd_.get(), LOCK_UN);
  if (::fsync(dir_fd_.get()) != 0) {
    log().warn("cannot flush directory of {}: {}", destination_.string(), describe_errno(errno));
  }
}

void StagedImage::release_page_tables() noexcept {
  if (data_ != nullptr) {
    // Advice on a shared mapping never loses data (it is not MADV_REMOVE); a failure leaves the
    // entries to munmap, which is all this saves.
    (void)::madvise(data_, size_, MADV_DONTNEED);
  }
}

void StagedImage::discard() noexcept {
  if (committed_ || removed_ || !dir_fd_.valid() || temp_name_.empty()) {
    return;
  }
  removed_ = true;
  unregister_temporary(signal_slot_);
  if (::unlinkat(dir_fd_.get(), temp_name_.c_str(), 0) != 0 && errno != ENOENT) {
    const int error = errno;  // before log(), whose first use may change errno
    try {
      log().warn("cannot remove temporary file {}: {}", temp_name_, describe_errno(error));
    } catch (...) {
    }
  }
}

}  // namespace imgcast::replicator
