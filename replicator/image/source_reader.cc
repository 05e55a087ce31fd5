#include "replicator/image/source_reader.h"

#include <fmt/format.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "replicator/errors.h"

namespace imgcast::replicator {

SourceReader::SourceReader(const ChunkSource& source, const ChunkPlan& plan,
                           std::span<std::byte> into, std::vector<std::uint64_t>& digests,
                           ImageHasher& hasher, std::uint32_t resume_batch, int into_fd)
    : resume_batch_(std::max<std::uint32_t>(resume_batch, 1)),
      source_(source),
      plan_(plan),
      into_(into),
      into_fd_(into_fd),
      digests_(digests),
      hasher_(hasher),
      wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!wake_.valid()) {
    throw TransferError(
        fmt::format("cannot make an eventfd for the source reader: {}", std::strerror(errno)));
  }
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

SourceReader::~SourceReader() {
  thread_.request_stop();
  // Wake it if it waits for a larger limit: it sees the stop request and ends.
  allowed_.fetch_add(1, std::memory_order_release);
  allowed_.notify_one();
}

void SourceReader::allow(std::uint32_t limit) noexcept {
  if (limit <= allowed_.load(std::memory_order_relaxed)) {
    return;
  }
  allowed_.store(limit);  // seq_cst, then the load: pairs with run()
  if (limit >= resume_at_.load()) {
    allowed_.notify_one();
  }
}

void SourceReader::drain() noexcept {
  if (signalled_.exchange(false)) {
    std::uint64_t count = 0;
    (void)!::read(wake_.get(), &count, sizeof count);
  }
}

void SourceReader::signal() noexcept {
  // One count in the eventfd until the send loop drains it: not a write per chunk.
  if (!signalled_.exchange(true)) {
    const std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
  }
}

void SourceReader::read_here(std::uint32_t needed) {
  const std::unique_lock hold(lock_, std::try_to_lock);
  if (hold.owns_lock() && ready() <= needed) {
    // Whether it read is seen in ready(); a failure is latched for failed().
    (void)read_next();
  }
}

void SourceReader::run(std::stop_token stop) {
  const std::uint32_t count = plan_.count();
  while (!stop.stop_requested() && !failed() && ready() < count) {
    std::uint32_t allowed = allowed_.load(std::memory_order_acquire);
    if (ready() >= allowed) {
      // At the limit: sleep until it has moved a batch on, not for every chunk sent (a wake-up
      // per chunk costs more than the reading ahead saves). allow() wakes us once it is there;
      // whichever of the two stores comes first, the other side sees it.
      const std::uint32_t resume_at = std::min(ready() + resume_batch_, count);
      resume_at_.store(resume_at);
      allowed = allowed_.load();
      // Until allow() has reached resume_at, or the destructor: a wait may also return as soon as
      // the limit moves at all (libstdc++ spins on the value before it sleeps), and reading one
      // chunk then would move resume_at past what allow() compares with, and it would never
      // wake us.
      while (allowed < resume_at && !stop.stop_requested()) {
        allowed_.wait(allowed, std::memory_order_acquire);
        allowed = allowed_.load();
      }
      continue;
    }
    const std::lock_guard hold(lock_);
    if (!stop.stop_requested() && read_next()) {
      by_thread_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

bool SourceReader::read_next() {
  const std::uint32_t index = ready_.load(std::memory_order_relaxed);
  if (index >= plan_.count() || index >= allowed_.load(std::memory_order_acquire) || failed()) {
    return false;
  }
  const Chunk chunk = plan_.at(index);
  const auto bytes = into_.subspan(chunk.offset, chunk.length);
  try {
    if (into_fd_ < 0 || !source_.copy_to_file(chunk, into_fd_)) {
      source_.read(chunk, bytes);
    }
  } catch (const ImgcastError& error) {
    error_ = error.what();
    failed_.store(true, std::memory_order_release);
    signal();
    return false;
  }
  digests_[index] = hasher_.update_and_digest_chunk(bytes);
  ready_.store(index + 1, std::memory_order_release);
  signal();
  return true;
}

}  // namespace imgcast::replicator
