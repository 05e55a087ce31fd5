// The verbs backend's wire codecs: the region key inside a descriptor, the SEND messages, the
// connection private data. All of them decode bytes a peer sent, so truncation, garbage and
// out-of-bound fields must be rejected, never half-decoded.
#include <gtest/gtest.h>

#include <random>

#include "transport/error.h"
#include "transport/region_descriptor.h"
#include "transport/verbs/connect_params.h"
#include "transport/verbs/rdma_wire.h"
#include "transport/verbs/region_key.h"
#include "transport/verbs/verbs_remote_region.h"

namespace imgcast::transport::verbs {
namespace {

constexpr std::uint64_t kGiB = 1ULL << 30;

RegionKey sample_key() { return RegionKey{kGiB, {0x11223344u, 0xdeadbeefu, 7u}}; }

TEST(RegionKey, RoundTripsInsideADescriptor) {
  RegionDescriptor d;
  d.kind = Kind::kVerbs;
  d.region_id = 3;
  d.base = 0x7f0000001000ULL;
  d.length = 2 * kGiB + 5;  // three segments, the last one 5 bytes
  d.key = sample_key().encode();
  const auto wire = d.encode();
  const auto back = RegionDescriptor::decode(wire);
  ASSERT_TRUE(back);
  EXPECT_EQ(RegionKey::decode(back->key, back->length), sample_key());
}

TEST(RegionKey, IsFixedWidthLittleEndian) {
  const auto bytes = RegionKey{4096, {0x01020304u}}.encode();
  ASSERT_EQ(bytes.size(), RegionKey::kFixedBytes + 4);
  EXPECT_EQ(bytes[0], std::byte{1});     // version 1, low byte first
  EXPECT_EQ(bytes[2], std::byte{1});     // one key
  EXPECT_EQ(bytes[9], std::byte{0x10});  // 4096 = 0x1000
  EXPECT_EQ(bytes[16], std::byte{4});
  EXPECT_EQ(bytes[19], std::byte{1});
}

TEST(RegionKey, RejectsEveryTruncationAndExtension) {
  const auto bytes = sample_key().encode();
  const std::uint64_t length = 2 * kGiB + 5;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(RegionKey::decode(std::span(bytes).first(n), length)) << "length " << n;
  }
  auto longer = bytes;
  longer.push_back(std::byte{0});
  EXPECT_FALSE(RegionKey::decode(longer, length));
}

TEST(RegionKey, RejectsKeysThatDoNotCoverTheRegion) {
  const auto bytes = sample_key().encode();
  EXPECT_TRUE(RegionKey::decode(bytes, 3 * kGiB));                       // exactly three segments
  EXPECT_FALSE(RegionKey::decode(bytes, 3 * kGiB + 1));                  // needs a fourth
  EXPECT_FALSE(RegionKey::decode(bytes, 2 * kGiB));                      // needs only two
  EXPECT_FALSE(RegionKey::decode(RegionKey{1024, {1}}.encode(), 1024));  // segment too small
  EXPECT_FALSE(RegionKey::decode(RegionKey{0, {}}.encode(), 0));         // no division by zero
  auto reserved = bytes;
  reserved[5] = std::byte{1};
  EXPECT_FALSE(RegionKey::decode(reserved, 3 * kGiB));
  auto version = bytes;
  version[0] = std::byte{2};
  EXPECT_FALSE(RegionKey::decode(version, 3 * kGiB));
}

TEST(RegionKey, GarbageNeverDecodesToAnInconsistentKey) {
  std::mt19937_64 random(42);
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::byte> bytes(random() % 64);
    for (auto& b : bytes)
      b = static_cast<std::byte>(random());
    const std::uint64_t length = random() % (1ULL << 40);
    if (const auto key = RegionKey::decode(bytes, length)) {
      EXPECT_GE(key->segment_bytes, RegionKey::kMinSegmentBytes);
      EXPECT_EQ(key->keys.size(), segments_for(length, key->segment_bytes));
    }
  }
}

TEST(RegionKey, SegmentChoiceFitsTheDescriptor) {
  EXPECT_EQ(choose_segment_bytes(10 * kGiB, kGiB), kGiB);
  EXPECT_EQ(choose_segment_bytes(100, 1000), 4096u);  // rounded up to a page multiple
  // A region too large for 1020 one-GiB MRs gets larger segments, still a page multiple.
  const std::uint64_t huge = 4096 * kGiB;
  const std::uint64_t segment = choose_segment_bytes(huge, kGiB);
  EXPECT_LE(segments_for(huge, segment), RegionKey::kMaxSegments);
  EXPECT_EQ(segment % 4096, 0u);
  EXPECT_EQ(segments_for(0, 4096), 0u);
  EXPECT_EQ(segments_for(~0ULL, 4096), (~0ULL >> 12) + 1);  // no overflow at the top
}

RegionDescriptor verbs_descriptor() {
  RegionDescriptor d;
  d.kind = Kind::kVerbs;
  d.base = 0x7f0000000000ULL;
  d.length = 2 * kGiB + 5;
  d.key = sample_key().encode();
  return d;
}

TEST(VerbsRemoteRegion, ImportsAWellFormedDescriptor) {
  const VerbsRemoteRegion region(verbs_descriptor());
  const MrLayout layout = region.layout();
  EXPECT_EQ(layout.base, 0x7f0000000000ULL);
  EXPECT_EQ(layout.length, 2 * kGiB + 5);
  EXPECT_EQ(layout.segment_bytes, kGiB);
  ASSERT_EQ(layout.keys.size(), 3u);
  EXPECT_EQ(layout.keys[1], 0xdeadbeefu);
  EXPECT_EQ(region.length(), 2 * kGiB + 5);
}

TEST(VerbsRemoteRegion, RefusesOtherBackendsBadKeysAndWrappingRanges) {
  auto other = verbs_descriptor();
  other.kind = Kind::kUcx;
  EXPECT_THROW(VerbsRemoteRegion{other}, Error);
  auto short_key = verbs_descriptor();
  short_key.key.pop_back();
  EXPECT_THROW(VerbsRemoteRegion{short_key}, Error);
  auto longer = verbs_descriptor();
  longer.length = 3 * kGiB + 1;  // the key has too few rkeys for it
  EXPECT_THROW(VerbsRemoteRegion{longer}, Error);
  auto wraps = verbs_descriptor();
  wraps.base = ~0ULL - kGiB;
  EXPECT_THROW(VerbsRemoteRegion{wraps}, Error);
}

std::vector<std::byte> buffer(std::size_t n) { return std::vector<std::byte>(n); }

TEST(RdmaWire, NoticeRoundTripsAndKeepsAll64Bits) {
  auto b = buffer(WireMessage::kNoticeBytes);
  ASSERT_EQ(encode_notice(b, 17, 0xfffffffeu, 1u << 20, 0xfeedfacecafebeefULL), b.size());
  const auto m = decode_message(b, 4096);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, MessageType::kNotice);
  EXPECT_EQ(m->credits, 17);
  EXPECT_EQ(m->imm, 0xfffffffeu);
  EXPECT_EQ(m->length, 1u << 20);
  EXPECT_EQ(m->notice, 0xfeedfacecafebeefULL);
}

TEST(RdmaWire, ControlFragmentAndCreditRoundTrip) {
  const std::vector<std::byte> payload = {std::byte{1}, std::byte{2}, std::byte{3}};
  auto b = buffer(WireMessage::kHeaderBytes + payload.size());
  encode_control(b, 5, kFirstFragment, payload);
  const auto m = decode_message(b, 4096);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, MessageType::kControl);
  EXPECT_EQ(m->flags, kFirstFragment);
  EXPECT_EQ(m->credits, 5);
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), m->fragment.begin(), m->fragment.end()));
  auto c = buffer(WireMessage::kHeaderBytes);
  encode_credit(c, 65535);
  ASSERT_TRUE(decode_message(c, 4096));
  EXPECT_EQ(decode_message(c, 4096)->credits, 65535);
  // An empty message is one empty fragment that is both first and last, nothing else.
  auto empty = buffer(WireMessage::kHeaderBytes);
  encode_control(empty, 0, kFirstFragment | kLastFragment, {});
  EXPECT_TRUE(decode_message(empty, 4096));
  encode_control(empty, 0, kFirstFragment, {});
  EXPECT_FALSE(decode_message(empty, 4096));
}

TEST(RdmaWire, RejectsMalformedMessages) {
  auto notice = buffer(WireMessage::kNoticeBytes);
  encode_notice(notice, 0, 1, 2, 3);
  for (std::size_t n = 0; n < notice.size(); ++n)
    EXPECT_FALSE(decode_message(std::span(notice).first(n), 4096)) << n;
  auto bad = notice;
  bad[12] = std::byte{1};  // reserved
  EXPECT_FALSE(decode_message(bad, 4096));
  bad = notice;
  bad[1] = std::byte{kFirstFragment};  // flags on a notice
  EXPECT_FALSE(decode_message(bad, 4096));
  bad = notice;
  bad[0] = std::byte{9};  // unknown type
  EXPECT_FALSE(decode_message(bad, 4096));

  const std::vector<std::byte> payload(100, std::byte{7});
  auto control = buffer(WireMessage::kHeaderBytes + payload.size());
  encode_control(control, 0, kLastFragment, payload);
  EXPECT_TRUE(decode_message(control, 100));
  EXPECT_FALSE(decode_message(control, 99));  // longer than a receive buffer holds
  EXPECT_FALSE(decode_message(std::span(control).first(control.size() - 1), 4096));
  bad = control;
  bad[1] = std::byte{0x80};  // unknown flag
  EXPECT_FALSE(decode_message(bad, 4096));
}

TEST(ConnectParams, RoundTripsAndAcceptsTheCmsZeroPadding) {
  const ConnectParams p{136, 8192};
  auto bytes = p.encode();
  EXPECT_EQ(ConnectParams::decode(bytes), p);
  bytes.resize(56, std::byte{0});  // what an IB CM connect request delivers
  EXPECT_EQ(ConnectParams::decode(bytes), p);
  bytes[40] = std::byte{1};  // but not garbage after it
  EXPECT_FALSE(ConnectParams::decode(bytes));
}

TEST(ConnectParams, RejectsShortWrongAndOutOfBounds) {
  const auto good = ConnectParams{136, 8192}.encode();
  for (std::size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(ConnectParams::decode(std::span(good).first(n))) << n;
  for (const ConnectParams p : {ConnectParams{0, 8192}, ConnectParams{1u << 16, 8192},
                                ConnectParams{136, 16}, ConnectParams{136, 1u << 21}}) {
    EXPECT_FALSE(ConnectParams::decode(p.encode()));
  }
  auto magic = good;
  magic[0] = std::byte{'X'};
  EXPECT_FALSE(ConnectParams::decode(magic));
  auto reserved = good;
  reserved[7] = std::byte{1};
  EXPECT_FALSE(ConnectParams::decode(reserved));
}

}  // namespace
}  // namespace imgcast::transport::verbs
