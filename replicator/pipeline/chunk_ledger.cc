#include "replicator/pipeline/chunk_ledger.h"

#include "replicator/log.h"

namespace imgcast::replicator {

ChunkLedger::ChunkLedger(ChunkPlan plan, int trees, StagedImage& image, int rank)
    : plan_(plan),
      trees_(trees),
      image_(image),
      rank_(rank),
      digests_(plan_.count()),
      landed_(plan_.count()) {}

std::uint64_t ChunkLedger::bytes_verified() const noexcept {
  return verified_ == plan_.count() ? plan_.image_bytes()
                                    : static_cast<std::uint64_t>(verified_) * plan_.chunk_bytes();
}

bool ChunkLedger::land_if_intact(const Chunk& chunk, std::uint64_t digest) noexcept {
  const auto bytes = image_.bytes().subspan(chunk.offset, chunk.length);
  // In order (the usual case): check the chunk and extend the image hash in one pass; a chunk
  // that fails leaves the image hash untouched.
  const bool next = chunk.index == verified_;
  const bool good =
      next ? hasher_.update_if_chunk_matches(bytes, digest) : chunk_digest(bytes) == digest;
  if (!good) {
    return false;
  }
  digests_[chunk.index] = digest;
  landed_[chunk.index] = 1;
  if (next)
    ++verified_;  // already hashed
  // Out of order, it joins the prefix when the gap closes; in order, the chunks that landed out
  // of order behind it join now.
  while (verified_ < plan_.count() && landed_[verified_] != 0) {
    const Chunk later = plan_.at(verified_);
    hasher_.update(image_.bytes().subspan(later.offset, later.length));
    ++verified_;
  }
  return true;
}

void ChunkLedger::land_read(std::uint32_t ready) noexcept {
  // The reader hashed them in order: each is landed, checked and in the verified prefix.
  for (; verified_ < ready; ++verified_) {
    landed_[verified_] = 1;
  }
}

void ChunkLedger::forget_unverified(int tree) noexcept {
  for (std::uint64_t k = verified_; k < plan_.count(); ++k) {
    if (tree_of(k) == tree)
      landed_[k] = 0;
  }
}

bool ChunkLedger::tree_missing_chunks(int tree) const noexcept {
  // Chunks before the verified prefix have all landed; look past it only.
  for (std::uint64_t k = verified_; k < plan_.count(); ++k) {
    if (tree_of(k) == tree && landed_[k] == 0)
      return true;
  }
  return false;
}

void ChunkLedger::fail(std::string reason) {
  if (!failure_) {
    log().error("rank {}: {}", rank_, reason);
    failure_ = std::move(reason);
  }
}

}  // namespace imgcast::replicator
