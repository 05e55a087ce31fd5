// Staging ownership and the sweep of abandoned staging entries. A staging file (StagedImage's
// ".NAME.imgcast-JOB[-X].tmp") or staging directory (StagedTree's ".NAME.imgcast-JOB[-X].tmp/")
// is flock(LOCK_EX)ed by the process that created it for as long as it exists (a directory on
// its own O_DIRECTORY descriptor: a lock file inside would become part of the placed tree, one
// beside it would be one more name to leak); a process that dies, however (SIGKILL, a crash, the
// node's OOM killer), releases the lock with its descriptors. So a staging entry whose lock can
// be taken belongs to nobody, and any run that stages into the directory removes it
// (docs/usage.md, "Staging files").
#pragma once

#include <string>
#include <string_view>

namespace imgcast::replicator {

// Whether `name` has the shape of a staging file: ".*.imgcast-*.tmp".
bool is_staging_name(std::string_view name) noexcept;

// Takes the staging lock on a freshly created staging file or directory `fd` (named `name` in
// `dir_fd`), and checks the name still leads to it: a sweep may have taken the lock between the
// O_EXCL create (or mkdir) and this call and removed it. Returns false then (the caller creates
// another). Where the file system has no locks, returns true: no sweep can take a lock there
// either.
bool claim_staging_file(int dir_fd, const std::string& name, int fd) noexcept;

// Removes every staging entry in `dir_fd` whose owner is gone (its lock is free); never one a
// live run holds. Only regular files and directories owned by our euid, opened without following
// a symlink; a directory only on `dir_fd`'s filesystem (a mount point is not a tree we built),
// removed with remove_tree_at() (safe_remove.h). Logs one info line per entry, naming
// `dir_name`. Returns how many it removed. Never throws: a sweep that cannot look leaves things
// as they are.
int sweep_stale_staging(int dir_fd, const std::string& dir_name) noexcept;

}  // namespace imgcast::replicator
