// PageRunner: a thread beside the transfer that keeps a staging file's pages a step ahead of
// the data and, on a disk, its write-back a step behind it, so that setup costs nothing per byte
// of image and the last fsync has little left to write.
//
// Ahead of the write point it maps the pages the data will land in (MADV_POPULATE_WRITE: the
// receive path then takes no page fault per 4 KiB) and, on tmpfs, where the space was only
// checked (StagedImage::Space::kChecked), allocates them first (fallocate of that step), so a
// tmpfs that fills up under us is reported as one "no space" line before data reaches a hole,
// instead of a failed receive or a SIGBUS. Only a bounded window ahead is touched: on a disk,
// pages dirtied early would be zeros the kernel could write back before the real bytes (a page
// written twice). None of that when the data comes through the file (Arrival::kThroughFile).
//
// Behind the write point, on a disk, it starts write-back of each finished step
// (sync_file_range WRITE) and waits for the step before it, so dirty pages stay bounded and the
// final fsync in StagedImage::commit() only flushes the tail. The pages stay cached for whoever
// reads the image next.
//
// The write point is the node's verified prefix (ChunkLedger::bytes_verified()), fed by the
// thread that drives the DataNode through advance(); nothing else is shared.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace imgcast::replicator {

class StagedImage;

class PageRunner {
 public:
  // How far ahead pages are mapped and allocated, and the unit of every step.
  static constexpr std::uint64_t kAhead = std::uint64_t{64} << 20;
  static constexpr std::uint64_t kStep = std::uint64_t{8} << 20;

  // How the data reaches the pages. kThroughMapping (a receive or a read() into the mapping):
  // allocate (tmpfs) and map them ahead. kThroughFile (the root's copy made by the kernel,
  // ChunkSource::copy_to_file; a TCP receive spliced into the file): the write allocates its
  // pages without zeroing and maps nothing, so the runner does neither (on tmpfs its fallocate
  // would also hold the file's lock against the writer: case 2 A/B wall 1.04 with it, 0.97
  // without) and only writes back behind on a disk. A tmpfs that fills up then fails the write
  // itself: ENOSPC, reported by the writer (ImageSource, the TCP backend's kNoSpace).
  enum class Arrival { kThroughMapping, kThroughFile };
  // Starts the thread, which begins with the first kAhead bytes. `image` must be reserved (its
  // mapping made) and outlive the runner.
  explicit PageRunner(StagedImage& image, Arrival arrival = Arrival::kThroughMapping);
  ~PageRunner();  // stops and joins (at most one step's syscall later)
  PageRunner(const PageRunner&) = delete;
  PageRunner& operator=(const PageRunner&) = delete;

  // The data has reached `bytes` (every byte below it is written). Cheap: wakes the thread only
  // when it waits for this point.
  void advance(std::uint64_t bytes) noexcept;
  // Set once, when a step could not be allocated (the filesystem is full): the one-line reason.
  // The owner fails the node with it.
  std::optional<std::string> failure() const;
  // Bytes of the image allocated and mapped so far (for tests and the log).
  std::uint64_t ahead() const noexcept { return mapped_.load(std::memory_order_acquire); }

 private:
  void run() noexcept;
  // One step of work if there is one: false when there is nothing to do until the point moves.
  bool step(std::uint64_t point);

  StagedImage& image_;
  const std::uint64_t size_;
  const bool allocate_;    // tmpfs: space checked only, so allocate before mapping
  const bool map_;         // Arrival::kThroughMapping
  const bool write_back_;  // a disk: start write-back behind the data
  std::atomic<std::uint64_t> point_{0};
  std::atomic<std::uint64_t> wanted_{0};  // the point past which the waiting thread has work
  std::atomic<std::uint64_t> mapped_{0};
  std::uint64_t written_back_ = 0;  // started write-back below this (the thread's own)
  std::uint64_t waited_ = 0;        // write-back finished below this (the thread's own)
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  // Set under mutex_ (so a waiting thread cannot miss it), read between steps without it.
  std::atomic<bool> stop_{false};
  std::optional<std::string> failure_;  // under mutex_
  std::atomic<bool> failed_{false};     // failure_ is set (read by the owner on every pump)
  std::thread thread_;                  // last: starts once everything above exists
};

}  // namespace imgcast::replicator
