// Once per node: several tasks of one node (srun --ntasks-per-node=8 imgcast hook ...) or a
// second hook call in the same job must cause one transfer. The first task to take an flock on
// a lock file beside the destination stages; the others block on the lock and then read what it
// recorded in a state file beside the destination:
//   "staged JOB"       the verified file is in place for this job: nothing to do
//   "staged JOB cache" the same, placed from the node cache (imgcast hook --cache)
//   "failed JOB STEP"  this launch failed on this node: the others fail too, at once
// Both files are small dot files in DST's directory, named after DST.
//
// DST's directory may be /tmp, where any user can create these names first. So both files are
// opened relative to the directory (openat, O_NOFOLLOW: never through a symlink) and must be
// ours, regular, with no access for group or others (mode 0600); anything else is refused at
// once (SecurityError, exit 4), without waiting on a lock another user may hold. The state file
// is replaced whole (a temporary file renamed over it), never written through, and "staged"
// counts only while DST carries a cache record of ours that describes it (cache_record.h).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "replicator/unique_fd.h"

namespace imgcast::cli::launch {

enum class NodeState { kNothing, kStaged, kFailed };

class NodeClaim {
 public:
  // Blocks until this process holds the node's lock for `destination`, up to `timeout`. Throws
  // InputError when the destination's directory is missing or not writable, SecurityError at
  // once when the lock file is a symlink or not ours with mode 0600, TransferError on timeout.
  NodeClaim(const std::filesystem::path& destination, std::chrono::milliseconds timeout);

  // What an earlier holder recorded for this job / step. Throws SecurityError when the state
  // file is a symlink or not ours with mode 0600.
  NodeState state(const std::string& job, const std::string& step) const;
  // Throw TransferError when the state cannot be written. `from_cache`: DST was placed from the
  // node cache (a link to its entry, which carries no per-copy record): "staged" then counts
  // while DST is a regular file of ours that no one else may write.
  void record_staged(const std::string& job, bool from_cache = false);
  void record_failed(const std::string& job, const std::string& step);

 private:
  void record(const std::string& line);

  std::filesystem::path destination_;
  std::string lock_name_;
  std::string state_name_;
  replicator::UniqueFd dir_;
  replicator::UniqueFd lock_;  // the flock is released when this closes
};

}  // namespace imgcast::cli::launch
