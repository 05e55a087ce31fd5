// RootFeed: where the root's chunks come from. It starts the SourceReader (the thread that reads
// the source into the staging mapping and hashes it), takes what the reader has published into
// the ledger, and paces it: the reader may run read_ahead ahead of the fastest live child (a few
// chunks before the first child has connected, all of the image once no child is left or pacing
// is stopped). When a child waits for a chunk and the reading thread has not moved for
// kReaderPatience (no core to run on), the chunk is read on the caller's thread instead.
//
// Created by DataNode::use_source() on the root only, and owned by it; used only from the thread
// that drives the DataNode. It reads the children's progress from Downstream and writes only the
// ledger.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "replicator/image/chunk_source.h"
#include "replicator/image/source_reader.h"
#include "replicator/pipeline/chunk_ledger.h"
#include "replicator/pipeline/data_node_options.h"
#include "replicator/pipeline/downstream.h"

namespace imgcast::replicator {

class RootFeed {
 public:
  // How long a waiting root gives its reading thread to read the next chunk before it reads it
  // itself: a thread that reads nothing for that long has no core to run on.
  static constexpr std::chrono::milliseconds kReaderPatience{1};

  // Starts reading `source` into the ledger's mapping (nothing yet: take() sets the first limit),
  // through the staging file when `through_file` (ChunkSource::copy_to_file). Throws
  // TransferError when the reader cannot start. All of them must outlive the RootFeed.
  RootFeed(const ChunkSource& source, const DataNodeOptions& options, ChunkLedger& ledger,
           const Downstream& children, bool through_file);
  RootFeed(const RootFeed&) = delete;
  RootFeed& operator=(const RootFeed&) = delete;

  // Read the rest of the source at once, whatever the children do.
  void stop_pacing() noexcept { pace_reads_ = false; }
  // Readable when the reader has published chunks (or failed).
  int wake_fd() const noexcept { return reader_->wake_fd(); }
  // Chunks taken from the reader (all of them landed and verified in the ledger).
  std::uint32_t chunks_read() const noexcept { return read_; }

  // Lands in the ledger what the reader has read, and lets it read on as far as the pacing
  // allows. A read error fails the ledger.
  void take();
  // The next chunk a live child could be sent now but that is not read yet (or, with no child
  // left to feed, the next one of our own copy); nullopt when no one waits for one.
  std::optional<std::uint32_t> chunk_wanted() const noexcept;
  // When the reading thread has read nothing for kReaderPatience while `wanted` is awaited, reads
  // the next chunk here and take()s it: true then (whether or not a chunk could be read).
  bool read_here_if_stalled(std::uint32_t wanted, std::chrono::steady_clock::time_point now);

 private:
  const DataNodeOptions& options_;
  ChunkLedger& ledger_;
  const Downstream& children_;
  bool pace_reads_ = true;        // read at most read_ahead_chunks_ ahead of the fastest child
  std::uint32_t read_ = 0;        // chunks taken from the reader
  std::uint32_t read_limit_ = 0;  // the reader may read chunks [0, read_limit_)
  std::uint64_t read_ahead_chunks_ = 0;  // read_ahead_bytes (resolved) in chunks
  // When the reading thread was last seen to move (it read a chunk) while we waited for one.
  std::uint32_t reader_seen_ = 0;
  std::chrono::steady_clock::time_point reader_seen_at_{};
  // Reads the source on its own thread into the staging mapping and the ledger's digests and
  // hasher. Last, so it stops before anything it writes through goes away.
  std::unique_ptr<SourceReader> reader_;
};

}  // namespace imgcast::replicator
