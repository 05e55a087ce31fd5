#include "replicator/plan/chunk_plan.h"

#include <gtest/gtest.h>

namespace imgcast::replicator {
namespace {

void expect_tiles(const ChunkPlan& plan) {
  std::uint64_t next = 0;
  for (std::uint32_t i = 0; i < plan.count(); ++i) {
    const Chunk c = plan.at(i);
    EXPECT_EQ(c.index, i);
    EXPECT_EQ(c.offset, next);
    EXPECT_GT(c.length, 0u);
    EXPECT_LE(c.length, plan.chunk_bytes());
    next += c.length;
  }
  EXPECT_EQ(next, plan.image_bytes());
}

TEST(ChunkPlan, EdgeSizesTileTheImage) {
  constexpr std::uint32_t kChunk = 64 * 1024;
  const std::uint64_t chunk = kChunk;
  for (std::uint64_t size :
       {std::uint64_t{0}, std::uint64_t{1}, chunk - 1, chunk, chunk + 1, 10 * chunk + 7}) {
    const ChunkPlan plan(size, kChunk);
    EXPECT_EQ(plan.count(), (size + kChunk - 1) / kChunk) << size;
    expect_tiles(plan);
  }
}

TEST(ChunkPlan, OffsetsPastFourGibibytes) {
  const ChunkPlan plan((5ULL << 30) + 3, 4u << 20);
  EXPECT_EQ(plan.count(), 1281u);
  EXPECT_EQ(plan.at(1280).offset, 5ULL << 30);
  EXPECT_EQ(plan.at(1280).length, 3u);
  EXPECT_EQ(plan.at(1100).offset, 1100ULL * (4u << 20));
}

TEST(ChunkPlan, FiveGibibytesInFourMebibyteChunks) {
  const ChunkPlan plan(5ULL << 30, 4u << 20);
  EXPECT_EQ(plan.count(), 1280u);
  expect_tiles(plan);
  const Chunk last = plan.at(1279);
  EXPECT_EQ(last.offset, (5ULL << 30) - (4u << 20));
  EXPECT_EQ(last.length, 4u << 20);
  EXPECT_EQ(plan.at(1024).offset, 4ULL << 30);  // the first offset past 32 bits
}

TEST(ChunkPlan, TheLargestChunkCount) {
  // Exactly kMaxChunks chunks is allowed; one byte more needs a 2^32nd chunk.
  const std::uint64_t most = std::uint64_t{ChunkPlan::kMaxChunks} * 4096;
  const ChunkPlan plan(most, 4096);
  EXPECT_EQ(plan.count(), ChunkPlan::kMaxChunks);
  const Chunk last = plan.at(ChunkPlan::kMaxChunks - 1);
  EXPECT_EQ(last.offset + last.length, most);
  EXPECT_THROW(ChunkPlan(most + 1, 4096), std::invalid_argument);
  // Near 2^64 the count must not wrap around to a small number and pass.
  EXPECT_THROW(ChunkPlan(~std::uint64_t{0}, 1u << 30), std::invalid_argument);
  const ChunkPlan huge(std::uint64_t{ChunkPlan::kMaxChunks} << 30, 1u << 30);
  EXPECT_EQ(huge.count(), ChunkPlan::kMaxChunks);
}

TEST(ChunkPlan, ChunkSizeErrorsNameTheRange) {
  try {
    (void)ChunkPlan(100, 0);
    ADD_FAILURE();
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "chunk size 0 is outside 4 KiB..1 GiB");
  }
}

TEST(ChunkPlan, ChunkSizeBounds) {
  EXPECT_THROW(ChunkPlan(100, 0), std::invalid_argument);
  EXPECT_THROW(ChunkPlan(100, 4095), std::invalid_argument);
  EXPECT_THROW(ChunkPlan(100, (1u << 30) + 1), std::invalid_argument);
  EXPECT_NO_THROW(ChunkPlan(100, 4096));
  EXPECT_NO_THROW(ChunkPlan(100, 1u << 30));
  // More than 2^32 - 1 chunks would not fit the 32-bit chunk index.
  EXPECT_THROW(ChunkPlan(1ULL << 45, 4096), std::invalid_argument);
}

}  // namespace
}  // namespace imgcast::replicator
