// SourceReader: reads the source into the root's staging copy, chunk by chunk and in order,
// hashing each chunk as it lands (its xxh3-64 and the whole-image xxh3-128, in one pass), on a
// thread of its own that stays ahead of the send loop. Why a thread: on the root, reading and
// hashing are half of the CPU each byte costs; with them on another core the send loop only
// sends.
//
// Hand-over: ready() counts the chunks read and hashed, published with release ordering after
// the chunk's bytes and digest; everything below it is the DataNode's to send and is never
// written again. The thread never reads past the limit the DataNode last allowed (its pacing).
// The send loop sleeps in poll on wake_fd(), an eventfd the thread signals when it publishes
// (once until drained, not once per chunk). And when the thread gets no core (more processes
// than cores: the send loop saw it read nothing for a while), the send loop reads the next chunk
// itself (read_here()): one lock per chunk keeps the order either way.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "replicator/image/chunk_source.h"
#include "replicator/image/integrity.h"
#include "replicator/plan/chunk_plan.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

class SourceReader {
 public:
  // Reads `plan`'s chunks from `source` into `into` (the staging mapping), each chunk's digest
  // into digests[index], and the image into `hasher`; all of them must outlive the reader, and
  // the caller touches none of them beyond ready() until every chunk is ready or failed(). Starts
  // with a limit of 0 chunks: call allow() to let it read. Throws TransferError when it cannot
  // make its eventfd.
  // Once at the limit, the thread goes on only when the limit has grown by `resume_batch` chunks
  // (or reaches the end).
  // `into_fd`, when not -1, is the file `into` maps: each chunk is then copied into it by the
  // kernel where the source can (ChunkSource::copy_to_file), and hashed through the mapping.
  SourceReader(const ChunkSource& source, const ChunkPlan& plan, std::span<std::byte> into,
               std::vector<std::uint64_t>& digests, ImageHasher& hasher,
               std::uint32_t resume_batch = 1, int into_fd = -1);
  ~SourceReader();  // stops and joins the thread
  SourceReader(const SourceReader&) = delete;
  SourceReader& operator=(const SourceReader&) = delete;

  // Chunks [0, ready()) are read and hashed.
  std::uint32_t ready() const noexcept { return ready_.load(std::memory_order_acquire); }
  // Let the reader go on up to chunk `limit` (exclusive). Limits only grow.
  void allow(std::uint32_t limit) noexcept;
  // Readable once chunks were published (or reading failed) since the last drain().
  int wake_fd() const noexcept { return wake_.get(); }
  // Clears wake_fd() (a read only when it was signalled).
  void drain() noexcept;
  // Reads the next chunk on the caller's thread, unless `needed` is ready, the limit is reached
  // or the thread is reading one right now.
  void read_here(std::uint32_t needed);
  // Chunks the thread itself has read: whether it is getting a core.
  std::uint32_t read_by_thread() const noexcept {
    return by_thread_.load(std::memory_order_relaxed);
  }
  // Why reading stopped early (the source shrank, a read failed).
  bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  // REQUIRES: failed().
  const std::string& error() const noexcept { return error_; }

 private:
  void run(std::stop_token stop);
  // Reads chunk ready() and publishes it, unless the limit or the end is reached or reading
  // failed; true when it read one. REQUIRES: lock_ held.
  bool read_next();
  void signal() noexcept;

  const std::uint32_t resume_batch_;
  const ChunkSource& source_;
  const ChunkPlan& plan_;
  std::span<std::byte> into_;
  const int into_fd_;
  std::vector<std::uint64_t>& digests_;
  ImageHasher& hasher_;
  UniqueFd wake_;
  std::mutex lock_;  // held while one chunk is read and hashed
  std::atomic<std::uint32_t> ready_{0};
  std::atomic<std::uint32_t> allowed_{0};
  std::atomic<std::uint32_t> resume_at_{0};  // the limit the waiting thread wants woken at
  std::atomic<bool> signalled_{false};       // wake_ holds a count to drain
  std::atomic<std::uint32_t> by_thread_{0};
  std::atomic<bool> failed_{false};
  std::string error_;    // written before failed_ is set
  std::jthread thread_;  // last: started once every member above exists
};

}  // namespace imgcast::replicator
