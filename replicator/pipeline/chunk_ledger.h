// ChunkLedger: what one node holds of the image, chunk by chunk. The state every part of a
// DataNode shares: Upstream lands the chunks its parents write (checking each one here),
// RootFeed lands the ones the root's reader has read, and Downstream and RootFeed read which
// chunks are here to send. It keeps, per chunk, the xxh3-64 that came with it and whether it has
// landed and been checked; the verified prefix (chunks [0, verified())), fed in order to the
// whole-image hasher; and the node's failure, once its own copy cannot complete.
//
// Created and owned by DataNode; used only from the thread that drives the DataNode (and, on the
// root, written below what it publishes by the SourceReader's thread, see reader_digests()).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "replicator/image/integrity.h"
#include "replicator/image/staged_image.h"
#include "replicator/plan/chunk_plan.h"

namespace imgcast::replicator {

class ChunkLedger {
 public:
  // `plan` cuts the image into chunks; `image` is the staging mapping the chunks land in; it must
  // outlive the ledger. `rank` names the node in the failure's log line.
  ChunkLedger(ChunkPlan plan, int trees, StagedImage& image, int rank);
  ChunkLedger(const ChunkLedger&) = delete;
  ChunkLedger& operator=(const ChunkLedger&) = delete;

  const ChunkPlan& plan() const noexcept { return plan_; }
  std::uint32_t count() const noexcept { return plan_.count(); }
  int trees() const noexcept { return trees_; }
  // Which tree chunk `chunk` travels (chunk k: tree k % trees()).
  int tree_of(std::uint64_t chunk) const noexcept { return static_cast<int>(chunk % trees_); }
  // The staging mapping (what the chunks land in and are sent from).
  std::span<std::byte> bytes() const noexcept { return image_.bytes(); }
  // The staging copy itself (its file, for the root's kernel copy and the page runner).
  StagedImage& image() const noexcept { return image_; }

  // REQUIRES: index < count().
  bool landed(std::uint64_t index) const noexcept { return landed_[index] != 0; }
  // The chunk's xxh3-64. REQUIRES: landed(index).
  std::uint64_t digest_of(std::uint64_t index) const noexcept { return digests_[index]; }
  // Chunks [0, verified()) are here, checked and hashed into the image digest.
  std::uint32_t verified() const noexcept { return verified_; }
  bool complete() const noexcept { return verified_ == plan_.count(); }
  std::uint64_t bytes_verified() const noexcept;
  // The whole-image xxh3-128. REQUIRES: complete().
  ImageDigest image_digest() const noexcept { return hasher_.digest(); }

  // A parent's write of `chunk` has landed: keeps it when its bytes match `digest` (and then
  // extends the verified prefix as far as it now reaches). False: it failed its check and
  // nothing changed (the image hash neither). REQUIRES: chunk is the plan's, not landed().
  bool land_if_intact(const Chunk& chunk, std::uint64_t digest) noexcept;
  // The root: the reader has read and hashed chunks [0, ready), digests included; they join the
  // verified prefix as they are. REQUIRES: no parent lands chunks here; ready >= verified().
  void land_read(std::uint32_t ready) noexcept;
  // Forgets the chunks of `tree` past the verified prefix (a new parent sends them all again).
  void forget_unverified(int tree) noexcept;
  // Chunks of `tree` not yet landed (a parent that owes none may go quiet).
  bool tree_missing_chunks(int tree) const noexcept;

  // The root's SourceReader writes these directly, each chunk below what it has published
  // (source_reader.h): the reader's contract, not the ledger's, keeps that safe.
  std::vector<std::uint64_t>& reader_digests() noexcept { return digests_; }
  ImageHasher& reader_hasher() noexcept { return hasher_; }

  // Set once; the node's own copy cannot complete (a parent that fails authentication, a read
  // error on the root).
  const std::optional<std::string>& failure() const noexcept { return failure_; }
  // Latches the first failure (logged once); later ones are ignored.
  void fail(std::string reason);

 private:
  const ChunkPlan plan_;
  const int trees_;
  StagedImage& image_;
  const int rank_;
  std::vector<std::uint64_t> digests_;  // per chunk: the xxh3-64 that came with it (or was read)
  std::vector<std::uint8_t> landed_;    // per chunk: present and checked
  std::uint32_t verified_ = 0;          // the verified prefix: chunks [0, verified_)
  ImageHasher hasher_;
  std::optional<std::string> failure_;
};

}  // namespace imgcast::replicator
