// StreamProgress: how a node's event loop tells its tree placement, running on a thread of its
// own (background_placement.h), how far the staged stream has arrived and been checked, so the
// tree's files are written while the rest of the stream is still on its way (tree_placement.h)
// instead of all after the last chunk: on a node that is both relay and writer, the two overlap.
//
// The loop thread calls verified() as the verified prefix grows, then either confirm() once the
// whole stream's xxh3-128 matches the root's, or fail() (a failure, an abort, the session's end).
// The placement thread waits: for bytes before it reads them, for the confirmation before it
// places the tree. A stop signal ends any wait too.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

#include "replicator/image/integrity.h"

namespace imgcast::replicator {

class StreamProgress {
 public:
  // Loop thread.
  void verified(std::uint64_t bytes);
  void confirm(const ImageDigest& digest);
  void fail() noexcept;

  // Placement thread. Return once the first `bytes` of the stream hold checked data, or the
  // whole stream was confirmed (its digest); throw TransferError on fail() or a stop signal.
  void wait_for(std::uint64_t bytes);
  ImageDigest wait_for_confirmation();

 private:
  template <typename Ready>
  void wait_until(Ready ready);

  std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t verified_ = 0;
  std::optional<ImageDigest> digest_;
  bool failed_ = false;
};

}  // namespace imgcast::replicator
