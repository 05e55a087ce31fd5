#include "replicator/plan/chunk_plan.h"

#include <fmt/format.h>

#include <stdexcept>

namespace imgcast::replicator {

ChunkPlan::ChunkPlan(std::uint64_t image_bytes, std::uint32_t chunk_bytes)
    : image_bytes_(image_bytes), chunk_bytes_(chunk_bytes), count_(0) {
  if (chunk_bytes < kMinChunkBytes || chunk_bytes > kMaxChunkBytes) {
    throw std::invalid_argument(fmt::format("chunk size {} is outside 4 KiB..1 GiB", chunk_bytes));
  }
  // Not (image_bytes + chunk_bytes - 1) / chunk_bytes: that wraps for sizes near 2^64.
  const std::uint64_t count = image_bytes / chunk_bytes + (image_bytes % chunk_bytes != 0 ? 1 : 0);
  if (count > kMaxChunks) {
    throw std::invalid_argument(
        fmt::format("a {}-byte image needs {} chunks of {} bytes, more than {}: use larger chunks",
                    image_bytes, count, chunk_bytes, kMaxChunks));
  }
  count_ = static_cast<std::uint32_t>(count);
}

Chunk ChunkPlan::at(std::uint32_t index) const noexcept {
  const std::uint64_t offset = std::uint64_t{index} * chunk_bytes_;
  const std::uint64_t left = image_bytes_ - offset;
  return Chunk{index, offset,
               static_cast<std::uint32_t>(left < chunk_bytes_ ? left : chunk_bytes_)};
}

}  // namespace imgcast::replicator
