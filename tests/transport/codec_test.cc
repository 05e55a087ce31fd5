// Pure codecs of the transport layer: the TCP frame header and the region descriptor. Both read
// bytes from the wire, so every malformed input must be rejected, never half-decoded.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "transport/region_descriptor.h"
#include "transport/tcp/frame_header.h"

namespace imgcast::transport {
namespace {

using tcp::FrameHeader;
using tcp::FrameType;
constexpr std::uint32_t kMaxControl = 1u << 20;

std::array<std::byte, FrameHeader::kBytes> encoded(const FrameHeader& h) {
  std::array<std::byte, FrameHeader::kBytes> out{};
  h.encode(out);
  return out;
}

FrameHeader sample_write() {
  FrameHeader h;
  h.type = FrameType::kWrite;
  h.region_id = 7;
  h.length = 4 << 20;
  h.write_key = 0x0123456789abcdefULL;
  h.offset = (5ULL << 30) + 17;  // past 4 GiB
  h.imm = 1234;
  h.notice = 0xfeedfacecafebeefULL;
  return h;
}

TEST(FrameHeader, WriteAndControlRoundTrip) {
  const FrameHeader write = sample_write();
  EXPECT_EQ(FrameHeader::decode(encoded(write), kMaxControl), write);
  FrameHeader control;
  control.type = FrameType::kControl;
  control.length = 300;
  EXPECT_EQ(FrameHeader::decode(encoded(control), kMaxControl), control);
}

TEST(FrameHeader, RejectsMalformedHeaders) {
  auto bad_magic = encoded(sample_write());
  bad_magic[0] = std::byte{'X'};
  EXPECT_FALSE(FrameHeader::decode(bad_magic, kMaxControl));

  auto bad_type = encoded(sample_write());
  bad_type[4] = std::byte{9};
  EXPECT_FALSE(FrameHeader::decode(bad_type, kMaxControl));

  for (int reserved : {5, 6, 7, 36, 39}) {
    auto bytes = encoded(sample_write());
    bytes[reserved] = std::byte{1};
    EXPECT_FALSE(FrameHeader::decode(bytes, kMaxControl)) << "reserved byte " << reserved;
  }

  FrameHeader empty_write = sample_write();
  empty_write.length = 0;
  EXPECT_FALSE(FrameHeader::decode(encoded(empty_write), kMaxControl));

  FrameHeader huge_control;
  huge_control.type = FrameType::kControl;
  huge_control.length = kMaxControl + 1;
  EXPECT_FALSE(FrameHeader::decode(encoded(huge_control), kMaxControl));

  // A control header carries nothing but its length: one encoding per message.
  for (int field = 0; field < 5; ++field) {
    FrameHeader control;
    control.type = FrameType::kControl;
    control.length = 10;
    switch (field) {
      case 0:
        control.region_id = 1;
        break;
      case 1:
        control.write_key = 1;
        break;
      case 2:
        control.offset = 1;
        break;
      case 3:
        control.imm = 1;
        break;
      case 4:
        control.notice = 1;
        break;
    }
    EXPECT_FALSE(FrameHeader::decode(encoded(control), kMaxControl)) << "field " << field;
  }

  // Limits are inclusive: the largest control message and a write of one byte are fine.
  FrameHeader largest_control;
  largest_control.type = FrameType::kControl;
  largest_control.length = kMaxControl;
  EXPECT_TRUE(FrameHeader::decode(encoded(largest_control), kMaxControl));
  FrameHeader one_byte = sample_write();
  one_byte.length = 1;
  EXPECT_TRUE(FrameHeader::decode(encoded(one_byte), kMaxControl));
}

// The layout is the wire contract (docs/protocol.md): pin every field's offset, little-endian.
TEST(FrameHeader, EncodesTheDocumentedLayout) {
  const auto bytes = encoded(sample_write());
  const auto u8 = [&](int i) { return static_cast<unsigned>(bytes[i]); };
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes.data()), 4), "IMGF");
  EXPECT_EQ(u8(4), 1u);
  EXPECT_EQ(u8(8), 7u);          // region id
  EXPECT_EQ(u8(12 + 2), 0x40u);  // length 4 MiB = 0x00400000
  EXPECT_EQ(u8(16), 0xefu);      // write key, low byte first
  EXPECT_EQ(u8(23), 0x01u);
  EXPECT_EQ(u8(24), 17u);  // offset 5 GiB + 17
  EXPECT_EQ(u8(27), 0x40u);
  EXPECT_EQ(u8(28), 0x01u);
  EXPECT_EQ(u8(32) | u8(33) << 8, 1234u);  // imm
  EXPECT_EQ(u8(40), 0xefu);                // notice
  EXPECT_EQ(u8(47), 0xfeu);
}

TEST(FrameHeader, RandomBytesNeverCrashAndRarelyDecode) {
  std::mt19937_64 random(3);
  int decoded = 0;
  for (int i = 0; i < 100000; ++i) {
    std::array<std::byte, FrameHeader::kBytes> bytes;
    for (auto& b : bytes)
      b = static_cast<std::byte>(random());
    decoded += FrameHeader::decode(bytes, kMaxControl).has_value();
  }
  EXPECT_EQ(decoded, 0);  // a random header has a 2^-32 chance of the right magic alone
}

TEST(RegionDescriptor, RoundTripsEveryKind) {
  for (Kind kind : {Kind::kTcp, Kind::kUcx, Kind::kVerbs}) {
    RegionDescriptor d;
    d.kind = kind;
    d.region_id = 42;
    d.base = 0x7f0000001000ULL;
    d.length = 6ULL << 30;
    d.key.assign(kind == Kind::kUcx ? 300 : 8, std::byte{0x5a});
    EXPECT_EQ(RegionDescriptor::decode(d.encode()), d);
  }
}

TEST(RegionDescriptor, RejectsTruncatedOversizedAndTrailing) {
  RegionDescriptor d;
  d.key.assign(8, std::byte{1});
  const auto bytes = d.encode();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(RegionDescriptor::decode(std::span(bytes).first(n))) << "cut at " << n;
  }
  auto trailing = bytes;
  trailing.push_back(std::byte{0});
  EXPECT_FALSE(RegionDescriptor::decode(trailing));

  auto bad_magic = bytes;
  bad_magic[1] = std::byte{0};
  EXPECT_FALSE(RegionDescriptor::decode(bad_magic));

  auto bad_kind = bytes;
  bad_kind[4] = std::byte{0};
  EXPECT_FALSE(RegionDescriptor::decode(bad_kind));

  for (int reserved : {5, 6, 7}) {  // one encoding per descriptor (a fuzzer finding)
    auto with_reserved = bytes;
    with_reserved[reserved] = std::byte{0xff};
    EXPECT_FALSE(RegionDescriptor::decode(with_reserved)) << "reserved byte " << reserved;
  }

  // A key length over the bound is refused before anything is copied.
  RegionDescriptor big;
  big.key.assign(RegionDescriptor::kMaxKeyBytes + 1, std::byte{2});
  EXPECT_FALSE(RegionDescriptor::decode(big.encode()));
}

}  // namespace
}  // namespace imgcast::transport
