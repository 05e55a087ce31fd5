// ByteWriter / ByteReader: round trips, and a reader fed hostile input (every truncation, lengths
// larger than the input or the caller's bound) fails cleanly without allocating.
#include "replicator/protocol/byte_codec.h"

#include <gtest/gtest.h>

#include <limits>

namespace imgcast::replicator {
namespace {

std::vector<std::byte> sample_message() {
  ByteWriter w;
  w.u8(7)
      .u16(0xBEEF)
      .u32(0xDEADBEEF)
      .u64(0x0123456789ABCDEFULL)
      .str("host:1")
      .blob(std::vector<std::byte>{std::byte{1}, std::byte{2}})
      .str("")
      .raw(std::vector<std::byte>{std::byte{9}});
  return w.take();
}

// Reads sample_message()'s fields in order; true when all of it was there.
bool read_sample(ByteReader& r) {
  (void)r.u8();
  (void)r.u16();
  (void)r.u32();
  (void)r.u64();
  (void)r.str(100);
  (void)r.blob(100);
  (void)r.str(100);
  (void)r.raw(1);
  return r.done();
}

TEST(ByteCodec, RoundTripsEveryField) {
  const auto bytes = sample_message();
  ByteReader r(bytes);
  EXPECT_EQ(r.u8(), 7);
  EXPECT_EQ(r.u16(), 0xBEEF);
  EXPECT_EQ(r.u32(), 0xDEADBEEFu);
  EXPECT_EQ(r.u64(), 0x0123456789ABCDEFULL);
  EXPECT_EQ(r.str(100), "host:1");
  EXPECT_EQ(r.blob(100), (std::vector<std::byte>{std::byte{1}, std::byte{2}}));
  EXPECT_EQ(r.str(100), "");
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.done());  // one byte left
  const auto last = r.raw(1);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0], std::byte{9});
  EXPECT_TRUE(r.done());
}

TEST(ByteCodec, LittleEndianOnTheWire) {
  ByteWriter w;
  w.u16(0x0102).u32(0x03040506).u64(0x0708090A0B0C0D0EULL).str("A");
  const std::vector<std::uint8_t> expected{0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0E,
                                           0x0D, 0x0C, 0x0B, 0x0A, 0x09, 0x08, 0x07,
                                           1,    0,    0,    0,    'A'};
  ASSERT_EQ(w.bytes().size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(static_cast<std::uint8_t>(w.bytes()[i]), expected[i]) << "byte " << i;
  }
}

TEST(ByteCodec, EveryTruncationFailsCleanly) {
  const auto bytes = sample_message();
  {
    ByteReader whole(bytes);
    ASSERT_TRUE(read_sample(whole));
  }
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    ByteReader r(std::span<const std::byte>(bytes).first(n));
    EXPECT_FALSE(read_sample(r)) << "cut at " << n;
    EXPECT_FALSE(r.ok()) << "cut at " << n;
  }
}

TEST(ByteCodec, ErrorsAreStickyAndReturnZeros) {
  ByteWriter w;
  w.u32(5).str("hello").u32(42);
  const auto bytes = w.take();
  ByteReader bounded(bytes);
  EXPECT_EQ(bounded.u32(), 5u);
  EXPECT_EQ(bounded.str(4), "");  // "hello" is over a 4-byte bound
  EXPECT_FALSE(bounded.ok());
  EXPECT_EQ(bounded.u32(), 0u);  // the bytes are there, but the reader has failed
  EXPECT_EQ(bounded.u8(), 0);
  EXPECT_TRUE(bounded.raw(0).empty());
  EXPECT_FALSE(bounded.done());
}

TEST(ByteCodec, HostileLengthsAllocateNothing) {
  ByteWriter w;
  w.u32(0xFFFFFFFFu);  // a 4 GiB blob announced, none sent
  const auto bytes = w.take();
  // Over the bound: rejected on the length alone.
  ByteReader over(bytes);
  EXPECT_TRUE(over.blob(1 << 20).empty());
  EXPECT_FALSE(over.ok());
  // Within an unlimited bound but past the input: rejected before a vector is sized.
  ByteReader past(bytes);
  EXPECT_TRUE(past.blob(std::numeric_limits<std::size_t>::max()).empty());
  EXPECT_FALSE(past.ok());
  ByteReader text(bytes);
  EXPECT_TRUE(text.str(std::numeric_limits<std::size_t>::max()).empty());
  EXPECT_FALSE(text.ok());
  // raw() with a size that would overflow pos + n.
  ByteReader huge(bytes);
  (void)huge.u8();
  EXPECT_TRUE(huge.raw(std::numeric_limits<std::size_t>::max()).empty());
  EXPECT_FALSE(huge.ok());
}

TEST(ByteCodec, AnEmptyInputIsDoneAtOnce) {
  ByteReader r({});
  EXPECT_TRUE(r.done());
  EXPECT_EQ(r.u64(), 0u);
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace imgcast::replicator
