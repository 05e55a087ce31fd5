// Staging-file ownership and the sweep of abandoned ones. A staging file (StagedImage's
// ".NAME.imgcast-JOB[-X].tmp") is flock(LOCK_EX)ed by the process that created it for as long as
// it exists; a process that dies, however (SIGKILL, a crash, the node's OOM killer), releases the
// lock with its descriptors. So a staging file whose lock can be taken belongs to nobody, and any
// run that stages into the directory removes it (docs/usage.md, "Staging files").
#pragma once

#include <string>
#include <string_view>

namespace imgcast::replicator {

// Whether `name` has the shape of a staging file: ".*.imgcast-*.tmp".
bool is_staging_name(std::string_view name) noexcept;

// Takes the staging lock on a freshly created staging file `fd` (named `name` in `dir_fd`), and
// checks the name still leads to it: a sweep may have taken the lock between the O_EXCL create and
// this call and removed the file. Returns false then (the caller creates another). Where the file
// system has no locks, returns true: no sweep can take a lock there either.
bool claim_staging_file(int dir_fd, const std::string& name, int fd) noexcept;

// Removes every staging file in `dir_fd` (regular, ours by euid) whose owner is gone (its lock is
// free); never one a live run holds. Logs one info line per file, naming `dir_name`. Returns how
// many it removed. Never throws: a sweep that cannot look leaves things as they are.
int sweep_stale_staging(int dir_fd, const std::string& dir_name) noexcept;

}  // namespace imgcast::replicator
