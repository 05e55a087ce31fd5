// Once per node: several tasks of one node (srun --ntasks-per-node=8 imgcast hook ...) or a
// second hook call in the same job must cause one transfer. The first task to take an flock on
// a lock file beside the destination stages; the others block on the lock and then read what it
// recorded in a state file beside the destination:
//   "staged JOB"       the verified file is in place for this job: nothing to do
//   "failed JOB STEP"  this launch failed on this node: the others fail too, at once
// Both files are small dot files in DST's directory, named after DST.
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
  // InputError when the destination's directory is missing or not writable, TransferError on
  // timeout.
  NodeClaim(const std::filesystem::path& destination, std::chrono::milliseconds timeout);

  // What an earlier holder recorded for this job / step.
  NodeState state(const std::string& job, const std::string& step) const;
  void record_staged(const std::string& job);
  void record_failed(const std::string& job, const std::string& step);

 private:
  std::filesystem::path destination_;
  std::filesystem::path state_file_;
  replicator::UniqueFd lock_;  // the flock is released when this closes
};

}  // namespace imgcast::cli::launch
