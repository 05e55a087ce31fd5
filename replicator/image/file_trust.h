// File trust: whether a file found beside a destination (a cached copy, its record, the hook's
// lock and state files) can have been written, or swapped in, by another user. Only a file this
// process's effective uid owns, that no group or other may write, in a directory no one else
// can replace it in, is taken for our own. Everything else was possibly planted: a 1777
// directory like /tmp lets any user create DST, its record and the hook's files first.
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>

namespace imgcast::replicator {

// Why the directory `dir` (fstat of the open directory) lets another user replace a file in it,
// or nullopt when it does not: it must belong to us or to root and be writable by no group or
// other, or be sticky (then only a file's owner, the directory's owner and root may rename or
// remove it, so a file that is ours stays ours).
std::optional<std::string> directory_distrust(const struct stat& dir);

// Why the file `file` (fstat of the open file, opened O_NOFOLLOW) is not ours to trust, or
// nullopt: a regular file owned by geteuid(), writable by no group or other.
std::optional<std::string> file_distrust(const struct stat& file);

}  // namespace imgcast::replicator
