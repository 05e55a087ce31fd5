#include "replicator/tree/safe_remove.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <new>

#include "replicator/tree/dir_listing.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

namespace {

// One directory level: holds one fd while its children are removed, so the fds open stay within
// the tree's depth.
bool remove_below(int dir_fd, const std::string& name, int& first_error) {
  const auto fail = [&first_error]() {
    if (first_error == 0) first_error = errno;
    return false;
  };
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? true : fail();
  }
  if (!S_ISDIR(st.st_mode)) {
    return ::unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT || fail();
  }
  UniqueFd child(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!child.valid() && errno == EACCES && ::fchmodat(dir_fd, name.c_str(), 0700, 0) == 0) {
    // A directory kept at mode 0500 or 0000 (as the tree asked): ours, so made enterable.
    child.reset(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  }
  // Gone meanwhile: another run's sweep (staging_sweep.h) may be removing the same abandoned
  // tree, and what it took is removed all the same.
  if (!child.valid()) return errno == ENOENT || fail();
  if ((st.st_mode & 0700) != 0700) (void)::fchmod(child.get(), (st.st_mode & 07777) | 0700);
  const auto names = list_directory(child.get());
  if (!names) return fail();
  bool all = true;
  for (const std::string& inner : *names) {
    all = remove_below(child.get(), inner, first_error) && all;
  }
  child.reset();
  return (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT || fail()) &&
         all;
}

}  // namespace

bool remove_tree_at(int dir_fd, const std::string& name) noexcept {
  int first_error = 0;
  bool removed = false;
  try {
    removed = remove_below(dir_fd, name, first_error);
  } catch (const std::bad_alloc&) {
    first_error = ENOMEM;
  }
  if (!removed) errno = first_error != 0 ? first_error : EIO;
  return removed;
}

}  // namespace imgcast::replicator
