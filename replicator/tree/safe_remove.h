// Removing a tree without ever leaving it: every step is relative to an fd of a directory being
// removed, opened O_NOFOLLOW|O_DIRECTORY, and a symlink is unlinked, never followed. A staging
// tree (or the old copy a new one replaced) can hold symlinks to anywhere, and a planted one must
// not turn cleanup into deleting the user's files.
#pragma once

#include <string>

namespace imgcast::replicator {

// Removes `name` in the directory open as `dir_fd`, and everything under it when it is a
// directory (a directory without owner write or search permission is granted them first, as
// its owner). A missing `name` counts as removed. Goes on past failures and returns false with
// errno of the first when anything is left.
bool remove_tree_at(int dir_fd, const std::string& name) noexcept;

}  // namespace imgcast::replicator
