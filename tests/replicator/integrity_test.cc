#include "replicator/integrity.h"

#include <gtest/gtest.h>

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
}

}  // namespace
}  // namespace imgcast::replicator
