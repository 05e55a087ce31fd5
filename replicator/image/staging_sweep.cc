#include "replicator/image/staging_sweep.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "replicator/log.h"
#include "replicator/tree/safe_remove.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

namespace {

constexpr std::string_view kMarker = ".imgcast-";
constexpr std::string_view kSuffix = ".tmp";

// Whether `name` in `dir_fd` is still the inode `fd` is open on: the name may have been removed
// or replaced since it was opened.
bool name_leads_to(int dir_fd, const char* name, int fd) noexcept {
  struct stat by_fd {};
  struct stat by_name {};
  return ::fstat(fd, &by_fd) == 0 && by_fd.st_nlink > 0 &&
         ::fstatat(dir_fd, name, &by_name, AT_SYMLINK_NOFOLLOW) == 0 &&
         by_fd.st_dev == by_name.st_dev && by_fd.st_ino == by_name.st_ino;
}

// The staging-looking names in `dir_fd`, read through a duplicate (closedir closes what it has).
std::vector<std::string> staging_names(int dir_fd) {
  std::vector<std::string> names;
  const int copy = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    return names;
  }
  DIR* raw = ::fdopendir(copy);
  if (raw == nullptr) {
    ::close(copy);
    return names;
  }
  const std::unique_ptr<DIR, int (*)(DIR*)> dir(raw, ::closedir);
  ::rewinddir(raw);  // the duplicate shares its offset with dir_fd: start from the top
  while (const dirent* entry = ::readdir(raw)) {
    if (is_staging_name(entry->d_name)) {
      names.emplace_back(entry->d_name);
    }
  }
  return names;
}

}  // namespace

bool is_staging_name(std::string_view name) noexcept {
  return name.size() > 1 + kMarker.size() + kSuffix.size() && name.front() == '.' &&
         name.find(kMarker) != std::string_view::npos && name.ends_with(kSuffix);
}

bool claim_staging_file(int dir_fd, const std::string& name, int fd) noexcept {
  // Blocking is fine: a sweep that took the lock of an entry this fresh holds it only for its
  // fstat and unlink (or the rmdir of an empty directory).
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      return true;  // no locks on this file system: no sweep can take one either
    }
  }
  return name_leads_to(dir_fd, name.c_str(), fd);
}

int sweep_stale_staging(int dir_fd, const std::string& dir_name) noexcept {
  int removed = 0;
  try {
    struct stat here {};
    if (::fstat(dir_fd, &here) != 0) {
      return 0;
    }
    for (const std::string& name : staging_names(dir_fd)) {
      // O_NOFOLLOW|O_NONBLOCK: a planted symlink or FIFO is neither followed nor waited on. A
      // directory opens O_RDONLY too, and that descriptor is where its builder's lock is.
      UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      struct stat st {};
      if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || st.st_uid != ::geteuid()) {
        continue;  // not ours: another user's entry is not ours to judge, let alone remove
      }
      // Ownership of the top is what counts for a tree: its removal never follows a symlink, so
      // nothing inside can point it elsewhere. A directory on another filesystem is a mount
      // point, never a staging tree (StagedTree makes it with mkdirat beside the destination).
      const bool tree = S_ISDIR(st.st_mode);
      if (!S_ISREG(st.st_mode) && !(tree && st.st_dev == here.st_dev)) {
        continue;
      }
      if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        continue;  // a live run holds it (EWOULDBLOCK), or locks do not work here
      }
      // Under the lock, the name must still be this entry: another sweep may have removed it and
      // a new run created a fresh one under the same name. The lock stays held (fd open) across
      // the removal, so a builder racing us for a fresh name waits, then finds it gone.
      if (!name_leads_to(dir_fd, name.c_str(), fd.get())) {
        continue;
      }
      if (tree) {
        if (!remove_tree_at(dir_fd, name)) {
          // Said each time: something in it resists (a file made immutable, say) and only the
          // user can clear it.
          log().warn("could not remove all of the stale staging directory {}/{}: {}", dir_name,
                     name, std::strerror(errno));
          continue;
        }
        ++removed;
        log().info("removed stale staging directory {}/{} (the run that built it is gone)",
                   dir_name, name);
        continue;
      }
      if (::unlinkat(dir_fd, name.c_str(), 0) != 0) {
        continue;
      }
      ++removed;
      log().info("removed stale staging file {}/{} ({} bytes; the run that wrote it is gone)",
                 dir_name, name, static_cast<long long>(st.st_size));
    }
  } catch (...) {
    // Out of memory, or logging failed: the sweep is housekeeping, never a reason to fail.
  }
  return removed;
}

}  // namespace imgcast::replicator
