#include "replicator/pipeline/root_feed.h"

#include <unistd.h>

#include <algorithm>

namespace imgcast::replicator {

namespace {

// read_ahead_bytes in chunks; 0 bytes: an eighth of this machine's memory (at least 256 MiB).
std::uint64_t read_ahead_chunks(const DataNodeOptions& options, const ChunkPlan& plan) {
  std::uint64_t ahead_bytes = options.read_ahead_bytes;
  if (ahead_bytes == 0) {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page_bytes = ::sysconf(_SC_PAGESIZE);
    const std::uint64_t memory = pages > 0 && page_bytes > 0
                                     ? static_cast<std::uint64_t>(pages) * page_bytes
                                     : std::uint64_t{2} << 30;
    ahead_bytes = std::max<std::uint64_t>(memory / 8, 256ull << 20);
  }
  return std::max<std::uint64_t>(options.read_ahead_before_children,
                                 ahead_bytes / plan.chunk_bytes());
}

}  // namespace

RootFeed::RootFeed(const ChunkSource& source, const DataNodeOptions& options, ChunkLedger& ledger,
                   const Downstream& children, bool through_file)
    : options_(options),
      ledger_(ledger),
      children_(children),
      read_ahead_chunks_(read_ahead_chunks(options, ledger.plan())),
      // Woken at the limit only once a quarter of the read-ahead is free again.
      reader_(std::make_unique<SourceReader>(
          source, ledger.plan(), ledger.bytes(), ledger.reader_digests(), ledger.reader_hasher(),
          static_cast<std::uint32_t>(read_ahead_chunks_ / 4),
          through_file ? ledger.image().file_descriptor() : -1)) {}

void RootFeed::take() {
  reader_->drain();
  if (reader_->failed()) {
    ledger_.fail(reader_->error());
    return;
  }
  read_ = reader_->ready();
  ledger_.land_read(read_);
  // Let it read ahead of the fastest live child by up to read_ahead_bytes. Far: reading done
  // early leaves the cores to the sends (1 GiB on loopback, largest node time: 16 chunks ahead
  // 0.46 s, 256 MiB 0.41-0.43 s, unbounded 0.38-0.41 s). Bounded: an image larger than memory
  // must still be sent while its pages are cached.
  // The fastest child, not the slowest: a stalled child must not hold back the others, nor the
  // root's own copy. Before the first child has connected, only a few chunks: reading the whole
  // image then would take the CPU from the handshakes.
  const bool before_children = children_.first_child_due();
  const std::uint64_t ahead =
      before_children ? options_.read_ahead_before_children : read_ahead_chunks_;
  const std::uint64_t limit =
      pace_reads_ && (children_.live_children() > 0 || before_children)
          ? std::min<std::uint64_t>(children_.fastest_progress() + ahead, ledger_.count())
          : ledger_.count();
  read_limit_ = static_cast<std::uint32_t>(limit);
  reader_->allow(read_limit_);
}

std::optional<std::uint32_t> RootFeed::chunk_wanted() const noexcept {
  if (read_ == ledger_.count()) {
    return std::nullopt;
  }
  if (const auto awaited = children_.chunk_awaited(read_limit_)) {
    return awaited;
  }
  if (children_.live_children() == 0 && !children_.first_child_due()) {
    return read_;  // nobody left to feed but our own copy
  }
  return std::nullopt;
}

bool RootFeed::read_here_if_stalled(std::uint32_t wanted,
                                    std::chrono::steady_clock::time_point now) {
  if (const std::uint32_t moved = reader_->read_by_thread(); moved != reader_seen_) {
    reader_seen_ = moved;
    reader_seen_at_ = now;
    return false;
  }
  if (now - reader_seen_at_ < kReaderPatience) {
    return false;
  }
  reader_->read_here(wanted);
  take();
  return true;
}

}  // namespace imgcast::replicator
