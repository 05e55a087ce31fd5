#include "replicator/session/stream_progress.h"

#include "replicator/errors.h"
#include "replicator/stop_signal.h"

namespace imgcast::replicator {

void StreamProgress::verified(std::uint64_t bytes) {
  {
    const std::lock_guard lock(mutex_);
    if (bytes <= verified_) {
      return;  // called every turn of the loop: only growth wakes the writer
    }
    verified_ = bytes;
  }
  changed_.notify_one();
}

void StreamProgress::confirm(const ImageDigest& digest) {
  {
    const std::lock_guard lock(mutex_);
    digest_ = digest;
  }
  changed_.notify_one();
}

void StreamProgress::fail() noexcept {
  {
    const std::lock_guard lock(mutex_);
    failed_ = true;
  }
  changed_.notify_one();
}

template <typename Ready>
void StreamProgress::wait_until(Ready ready) {
  std::unique_lock lock(mutex_);
  // A stop signal sets a flag and notifies nobody: looked at every 50 ms.
  while (!changed_.wait_for(lock, std::chrono::milliseconds(50),
                            [&] { return failed_ || ready(); })) {
    if (stop_requested()) {
      throw TransferError("stopped while writing the tree (a stop signal)");
    }
  }
  if (failed_) {
    throw TransferError("the transfer of the tree's stream ended before it was complete");
  }
}

void StreamProgress::wait_for(std::uint64_t bytes) {
  wait_until([&] { return verified_ >= bytes || digest_.has_value(); });
}

ImageDigest StreamProgress::wait_for_confirmation() {
  wait_until([&] { return digest_.has_value(); });
  const std::lock_guard lock(mutex_);  // wait_until released it
  return *digest_;
}

}  // namespace imgcast::replicator
