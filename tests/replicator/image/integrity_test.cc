#include "replicator/image/integrity.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <random>

namespace imgcast::replicator {
namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()),
          reinterpret_cast<const std::byte*>(s.data()) + s.size()};
}

TEST(Integrity, Xxh3KnownVectors) {
  // Reference values of XXH3-64 (seed 0) from the xxHash test suite.
  EXPECT_EQ(chunk_digest({}), 0x2D06800538D394C2ULL);
  ImageHasher empty;
  EXPECT_EQ(empty.digest().to_hex(), "99aa06d3014798d86001c324468d497f");
}

TEST(Integrity, MatchesTheLibraryOneShot) {
  // The hasher's streaming state and the dispatched entry points must agree with plain
  // XXH3_128bits / XXH3_64bits, and high/low must not be swapped.
  const std::string text = "imgcast replicates a container image to every node of a job";
  const auto data = bytes_of(text);
  const XXH128_hash_t reference = XXH3_128bits(text.data(), text.size());
  ImageHasher hasher;
  hasher.update(std::span(data).first(7));
  hasher.update(std::span(data).subspan(7));
  EXPECT_EQ(hasher.digest(), (ImageDigest{reference.high64, reference.low64}));
  EXPECT_EQ(chunk_digest(data), XXH3_64bits(text.data(), text.size()));
  EXPECT_EQ(hasher.digest().to_hex().size(), 32u);
}

TEST(Integrity, StreamingInPiecesEqualsOneShot) {
  std::vector<std::byte> data(3'000'017);
  std::mt19937_64 random(9);
  for (auto& b : data)
    b = static_cast<std::byte>(random());
  ImageHasher whole;
  whole.update(data);
  for (std::size_t piece : {1ul, 4096ul, 65537ul, 1ul << 20}) {
    ImageHasher pieces;
    for (std::size_t at = 0; at < data.size(); at += piece) {
      pieces.update(std::span(data).subspan(at, std::min(piece, data.size() - at)));
    }
    EXPECT_EQ(pieces.digest(), whole.digest()) << "pieces of " << piece;
  }
  const XXH128_hash_t reference = XXH3_128bits(data.data(), data.size());
  EXPECT_EQ(whole.digest(), (ImageDigest{reference.high64, reference.low64}));
  EXPECT_EQ(chunk_digest(data), XXH3_64bits(data.data(), data.size()));
}

TEST(Integrity, OneFlippedBitChangesBothDigests) {
  auto data = bytes_of("imgcast moves container images");
  const auto chunk = chunk_digest(data);
  ImageHasher before;
  before.update(data);
  data[5] ^= std::byte{1};
  EXPECT_NE(chunk_digest(data), chunk);
  ImageHasher after;
  after.update(data);
  EXPECT_NE(after.digest(), before.digest());
}

TEST(Integrity, HexIsHighThenLow) {
  EXPECT_EQ((ImageDigest{0x0123456789abcdefULL, 0x1ULL}).to_hex(),
            "0123456789abcdef0000000000000001");
  EXPECT_EQ((ImageDigest{~0ULL, 0xABCULL}).to_hex(), "ffffffffffffffff0000000000000abc");
  EXPECT_EQ(ImageDigest{}.to_hex(), std::string(32, '0'));
}

}  // namespace
}  // namespace imgcast::replicator

namespace imgcast::replicator {
namespace {

TEST(ImageHasherOnePass, MatchesTheTwoSeparateHashes) {
  std::vector<std::byte> data(3 * 1024 * 1024 + 777);
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<std::byte>((i * 2654435761u) >> 13);
  const std::span<const std::byte> all(data);
  // Chunks of awkward sizes around the 32 KiB block: each digest equals the one-shot digest, and
  // the image digest equals the one fed chunk by chunk with update().
  ImageHasher one_pass;
  ImageHasher separate;
  std::size_t at = 0;
  for (std::size_t length : {1u, 240u, 32768u, 32769u, 65536u, 1048576u, 5u}) {
    const auto chunk = all.subspan(at, length);
    EXPECT_EQ(one_pass.update_and_digest_chunk(chunk), chunk_digest(chunk)) << length;
    separate.update(chunk);
    at += length;
  }
  EXPECT_EQ(one_pass.digest(), separate.digest());
  EXPECT_EQ(one_pass.update_and_digest_chunk({}), chunk_digest({}));
}

}  // namespace
}  // namespace imgcast::replicator

namespace imgcast::replicator {
namespace {

TEST(ImageHasherCheckedChunk, ABadChunkLeavesTheImageHashAsItWas) {
  std::vector<std::byte> data(2 * 100000 + 3);
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<std::byte>((i * 40503u) >> 7);
  const std::span<const std::byte> all(data);
  const auto first = all.subspan(0, 100000);
  const auto second = all.subspan(100000);
  std::vector<std::byte> corrupt(second.begin(), second.end());
  corrupt[4242] ^= std::byte{0x10};

  ImageHasher checked;
  EXPECT_TRUE(checked.update_if_chunk_matches(first, chunk_digest(first)));
  // The corrupt copy fails against the real digest and is not fed; the good one then is.
  EXPECT_FALSE(checked.update_if_chunk_matches(corrupt, chunk_digest(second)));
  EXPECT_TRUE(checked.update_if_chunk_matches(second, chunk_digest(second)));

  ImageHasher plain;
  plain.update(all);
  EXPECT_EQ(checked.digest(), plain.digest());
}

}  // namespace
}  // namespace imgcast::replicator
