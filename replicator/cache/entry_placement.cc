#include "replicator/cache/entry_placement.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "replicator/errors.h"
#include "replicator/image/cache_record.h"
#include "replicator/image/staged_image.h"
#include "replicator/image/staging_sweep.h"
#include "replicator/log.h"
#include "replicator/stop_signal.h"

namespace imgcast::replicator {

namespace fs = std::filesystem;

namespace {

// The staging name beside DST (staging_sweep.h's shape, so a run that dies leaves nothing a
// later sweep would not remove), created and locked; it is unlinked again unless renamed.
class StagingName {
 public:
  StagingName(int dir_fd, const std::string& name, const std::string& job_tag)
      : dir_fd_(dir_fd), name_("." + name + ".imgcast-" + job_tag + "-cache.tmp") {
    (void)::unlinkat(dir_fd_, name_.c_str(), 0);  // ours from a failed attempt, if anything
  }
  ~StagingName() {
    unregister_temporary(slot_);
    if (!placed_) {
      (void)::unlinkat(dir_fd_, name_.c_str(), 0);
    }
  }
  StagingName(const StagingName&) = delete;
  StagingName& operator=(const StagingName&) = delete;
  const std::string& name() const noexcept { return name_; }
  void created(int fd) {
    slot_ = register_temporary(dir_fd_, name_);
    if (fd >= 0) {
      (void)claim_staging_file(dir_fd_, name_, fd);
    }
  }
  void place(const std::string& final_name, const fs::path& shown) {
    if (::renameat(dir_fd_, name_.c_str(), dir_fd_, final_name.c_str()) != 0) {
      throw TransferError(fmt::format("cannot place {}: {}", shown.string(), std::strerror(errno)));
    }
    placed_ = true;
    if (::fsync(dir_fd_) != 0) {
      log().warn("cannot flush the directory of {}: {}", shown.string(), std::strerror(errno));
    }
  }

 private:
  int dir_fd_;
  std::string name_;
  int slot_ = -1;
  bool placed_ = false;
};

UniqueFd create_file(int dir_fd, StagingName& staging, const fs::path& shown) {
  UniqueFd fd(::openat(dir_fd, staging.name().c_str(),
                       O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    throw InputError(fmt::format("destination directory {} is not writable: {}",
                                 directory_of(shown).string(), std::strerror(errno)));
  }
  staging.created(fd.get());
  return fd;
}

void finish_file(int fd, mode_t mode, const fs::path& shown) {
  if (::fsync(fd) != 0 || ::fchmod(fd, mode) != 0) {
    throw TransferError(fmt::format("cannot write {}: {}", shown.string(), std::strerror(errno)));
  }
}

// copy_file_range where the kernel allows it between these file systems (it may clone or copy
// in the kernel), else sendfile: both without the bytes passing through user space.
void copy_bytes(int from, int to, std::uint64_t bytes, const fs::path& shown) {
  loff_t in = 0;
  loff_t out = 0;
  bool same_fs_call = true;
  while (static_cast<std::uint64_t>(in) < bytes) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(bytes - in, 1 << 30));
    ssize_t moved = 0;
    if (same_fs_call) {
      moved = ::copy_file_range(from, &in, to, &out, want, 0);
      if (moved < 0 && (errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS ||
                        errno == EINVAL)) {
        same_fs_call = false;
        continue;
      }
    } else {
      off_t offset = in;
      moved = ::sendfile(to, from, &offset, want);
      in = offset;
    }
    if (moved < 0 && errno == EINTR) {
      continue;
    }
    if (moved <= 0) {
      throw TransferError(fmt::format("cannot copy the cached image to {}: {}", shown.string(),
                                      moved < 0 ? std::strerror(errno) : "it ended early"));
    }
  }
}

}  // namespace

const char* placement_name(EntryPlacement how) noexcept {
  switch (how) {
    case EntryPlacement::kAlreadyThere:
      return "already there";
    case EntryPlacement::kReflink:
      return "reflink";
    case EntryPlacement::kHardLink:
      return "hard link";
    case EntryPlacement::kCopy:
      return "copy";
  }
  return "?";
}

EntryPlacement place_from_entry(const EntryPin& entry, const fs::path& destination, mode_t mode,
                                const std::string& job_tag, bool follow_symlinks) {
  const UniqueFd dir_fd = open_destination_directory(directory_of(destination));
  if (!follow_symlinks) {
    refuse_symlinked_directory(destination);
  }
  const std::string name = destination.filename().string();
  struct stat entry_st {};
  struct stat existing {};
  if (::fstat(entry.fd(), &entry_st) != 0) {
    throw TransferError(fmt::format("cannot read the cache entry {}: {}", entry.path().string(),
                                    std::strerror(errno)));
  }
  if (::fstatat(dir_fd.get(), name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(existing.st_mode)) {
      throw InputError(fmt::format("destination {} is a directory: name the file to create",
                                   destination.string()));
    }
    if (existing.st_ino == entry_st.st_ino && existing.st_dev == entry_st.st_dev) {
      return EntryPlacement::kAlreadyThere;  // an earlier run linked it
    }
  }
  StagingName staging(dir_fd.get(), name, job_tag);
  EntryPlacement how = EntryPlacement::kCopy;
  {
    UniqueFd fd = create_file(dir_fd.get(), staging, destination);
    if (::ioctl(fd.get(), FICLONE, entry.fd()) == 0) {
      finish_file(fd.get(), mode, destination);
      how = EntryPlacement::kReflink;
    }
  }
  if (how != EntryPlacement::kReflink) {
    (void)::unlinkat(dir_fd.get(), staging.name().c_str(), 0);
    // Links the very inode we pinned and checked, not whatever a path names now.
    const std::string self = fmt::format("/proc/self/fd/{}", entry.fd());
    if (::linkat(AT_FDCWD, self.c_str(), dir_fd.get(), staging.name().c_str(),
                 AT_SYMLINK_FOLLOW) == 0) {
      staging.created(-1);
      how = EntryPlacement::kHardLink;
    } else {
      const int link_error = errno;
      UniqueFd fd = create_file(dir_fd.get(), staging, destination);
      copy_bytes(entry.fd(), fd.get(), static_cast<std::uint64_t>(entry_st.st_size), destination);
      finish_file(fd.get(), mode, destination);
      log().debug("{}: no reflink or hard link to the cache ({}): copied",
                  destination.string(), std::strerror(link_error));
    }
  }
  staging.place(name, destination);
  return how;
}

}  // namespace imgcast::replicator
