// TreeStream: the root's reader of a walked tree as one byte stream (stream_layout.h): the header
// and manifest from memory, then each regular file's bytes in manifest order. It has the shape of
// ImageSource behind ChunkSource (size(), cache_key(), read(chunk, into)), so SourceReader
// reads a tree the way it reads an image.
//
// Each file is opened once, when the first chunk that needs it is read, with O_NOFOLLOW under
// its directory's fd (the directories on the way are opened once each, O_NOFOLLOW, and kept
// while the files under them are read), and closed after its last byte. A file that is not what
// the walk saw (another inode, size or mtime; or shorter when read) fails the read with a
// TransferError: the manifest already promised its size to every agent.
//
// Not thread-safe: calls must not overlap (SourceReader's lock already serialises them). Reads
// are cheapest in order; a read further back reopens the file it needs.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "replicator/image/chunk_source.h"
#include "replicator/image/integrity.h"
#include "replicator/plan/chunk_plan.h"
#include "replicator/tree/tree_walk.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

class TreeStream final : public ChunkSource {
 public:
  // Encodes the header and manifest. Throws InputError when the tree is over `limits`.
  explicit TreeStream(WalkedTree tree, const ManifestLimits& limits = {});

  // Header, manifest and data: the "image" size the chunk plan is made for.
  std::uint64_t size() const noexcept override {
    return prefix_.size() + tree_.manifest.data_bytes;
  }
  const WalkedTree& tree() const noexcept { return tree_; }
  // Digest of the manifest's bytes: what an agent's copy records as its identity.
  const ImageDigest& manifest_digest() const noexcept { return digest_; }
  // tree_source_key(): decides the node-local cache without reading a byte of data.
  std::string cache_key() const override { return cache_key_; }
  // Exactly chunk.length bytes of the stream at chunk.offset into `into`. Throws TransferError
  // when a file changed since the walk or a read fails. REQUIRES: into.size() >= chunk.length.
  void read(const Chunk& chunk, std::span<std::byte> into) const override;
  // Regular files opened so far (each should be opened once per transfer).
  std::uint64_t files_opened() const noexcept { return files_opened_; }

 private:
  // Reads up to `into.size()` bytes of the data section at `offset`, within one file; returns
  // how many.
  std::size_t read_data(std::uint64_t offset, std::span<std::byte> into) const;
  void open_file(std::size_t index) const;
  int directory_fd(std::uint32_t root, const std::string& relative) const;
  void close_file_checked() const;

  WalkedTree tree_;
  std::vector<std::byte> prefix_;  // header + manifest
  ImageDigest digest_;
  std::string cache_key_;

  // The cursor: what is open now. Mutable because read() is logically const (it only reads).
  mutable std::size_t open_index_ = SIZE_MAX;  // index into tree_.files of open_file_
  mutable UniqueFd open_file_;
  mutable std::uint32_t open_root_ = UINT32_MAX;
  mutable UniqueFd root_fd_;
  mutable std::vector<std::pair<std::string, UniqueFd>> dirs_;  // components under the root
  mutable std::uint64_t files_opened_ = 0;
};

}  // namespace imgcast::replicator
