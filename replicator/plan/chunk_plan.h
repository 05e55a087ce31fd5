// ChunkPlan: how an image of image_bytes is cut into chunks of chunk_bytes (the last one may be
// shorter). Pure arithmetic; a chunk's index is what travels as the write's immediate.
#pragma once

#include <cstdint>

namespace imgcast::replicator {

struct Chunk {
  std::uint32_t index = 0;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
};

class ChunkPlan {
 public:
  static constexpr std::uint32_t kMinChunkBytes = 4 * 1024;
  static constexpr std::uint32_t kMaxChunkBytes = 1024 * 1024 * 1024;
  static constexpr std::uint32_t kMaxChunks = 0xFFFFFFFFu;

  // Throws std::invalid_argument when chunk_bytes is outside [kMinChunkBytes, kMaxChunkBytes] or
  // the image would need more than kMaxChunks chunks.
  ChunkPlan(std::uint64_t image_bytes, std::uint32_t chunk_bytes);

  std::uint64_t image_bytes() const noexcept { return image_bytes_; }
  std::uint32_t chunk_bytes() const noexcept { return chunk_bytes_; }
  std::uint32_t count() const noexcept { return count_; }  // 0 for an empty image
  // REQUIRES: index < count().
  Chunk at(std::uint32_t index) const noexcept;

 private:
  std::uint64_t image_bytes_;
  std::uint32_t chunk_bytes_;
  std::uint32_t count_;
};

}  // namespace imgcast::replicator
