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
  // Where it can, copies the chunk into the file `fd` at chunk.offset inside the kernel instead:
  // no user-space copy, and no page-table entries or zeroed pages for the destination (a staging
  // file's pages filled through its mapping cost both). The bytes then show through any mapping
  // of `fd`. False when this source cannot (the caller read()s into memory instead); throws as
  // read() does. Called for one chunk at a time.
  virtual bool copy_to_file(const Chunk& chunk, int fd) const {
    (void)chunk;
    (void)fd;
    return false;
  }
  // Whether copy_to_file() is expected to work (so the destination's pages need not be mapped
  // ahead of the data: PageRunner::Arrival).
  virtual bool copies_in_kernel() const noexcept { return false; }
};

}  // namespace imgcast::replicator
