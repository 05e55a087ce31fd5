// ChunkSource: what the root's reading thread reads chunks from. Two kinds: one image file
// (ImageSource) or a walked directory tree as one byte stream (TreeStream, tree/tree_stream.h).
// The pipeline (SourceReader, RootFeed, DataNode) sees only this, so a tree travels through the
// same chunk path, digests and re-parenting as an image; one virtual call per chunk (chunks are
// at least 4 KiB, usually MiBs) costs nothing next to the read itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "replicator/plan/chunk_plan.h"

namespace imgcast::replicator {

class ChunkSource {
 public:
  virtual ~ChunkSource() = default;
  // The stream's length in bytes: what the chunk plan is made for.
  virtual std::uint64_t size() const noexcept = 0;
  // Decides the node-local cache without reading a byte; empty: never cached.
  virtual std::string cache_key() const = 0;
  // Exactly chunk.length bytes at chunk.offset into `into`. Throws TransferError when the source
  // changed or a read failed. REQUIRES: into.size() >= chunk.length.
  virtual void read(const Chunk& chunk, std::span<std::byte> into) const = 0;
};

}  // namespace imgcast::replicator
