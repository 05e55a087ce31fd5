// The control-message codec: every message round-trips, and hostile bytes never decode.
#include "replicator/protocol/messages.h"

#include <gtest/gtest.h>

#include <random>

namespace imgcast::replicator {
namespace {

std::vector<Message> samples() {
  Hello hello;
  hello.channel = Channel::kData;
  hello.rank = 77;
  hello.job_id[3] = std::byte{9};
  hello.nonce[31] = std::byte{1};
  Challenge challenge;
  challenge.mac[0] = std::byte{0xaa};
  Plan plan;
  plan.image_bytes = (5ull << 30) + 3;
  plan.chunk_bytes = 4 << 20;
  plan.job_size = 1000;
  plan.data_rank = 5;
  plan.stall_timeout_ms = 60000;
  plan.topology = "binomial";
  plan.destination = "/tmp/%r/app.sif";
  plan.job_tag = "abc123";
  plan.parents = {{12, {std::byte{'h'}, std::byte{':'}, std::byte{'1'}}}, {3, {std::byte{'g'}}}};
  plan.tree = 1;
  return {hello,
          challenge,
          Proof{},
          Join{{std::byte{1}, std::byte{2}}, "node7"},
          plan,
          Ready{},
          Failed{1, "destination directory /tmp/x does not exist"},
          Finish{ImageDigest{1, 2}},
          Result{123456789, 7, 0x6},
          Abort{"interrupted"},
          Bye{},
          Region{{std::byte{7}}, 1234, 1},
          Orphaned{1, 4321, "lost parent rank 3"},
          Adopt{9, 1},
          Adopted{9, 1},
          Reparent{1, 2, {std::byte{'h'}, std::byte{':'}, std::byte{'2'}}},
          Refetch{17},
          Burst{3, std::vector<std::byte>(kMaxBurstBytes, std::byte{0x5a})},
          BurstAck{3},
          Probe{1ull << 33, 1, 0600, 1, "abc123", "0123456789abcdef", "/tmp/%h.sif", 0, "", 0, ""},
          Probe{1ull << 33, 0, 0600, 0, "abc123", "", "/tmp/%h/env", 1, "", 0, ""},
          Probe{1ull << 33, 0, 0600, 0, "abc123", "0123456789abcdef", "", 0, "/tmp/imgcast-cache-0", 1ull << 30, "/lustre/app.sif"},
          Probed{1, ImageDigest{3, 4}},
          Skip{},
          Progress{1ull << 40}};
}

TEST(Messages, EveryMessageRoundTrips) {
  for (const Message& message : samples()) {
    const auto bytes = encode(message);
    const std::optional<Message> decoded = decode(bytes);
    ASSERT_TRUE(decoded) << message_name(message);
    EXPECT_EQ(decoded->index(), message.index());
    EXPECT_EQ(encode(*decoded), bytes) << message_name(message);
  }
}

// An Abort naming every host of a 2,000-node job that failed to join: the peer must still read
// it as an Abort (it once failed to decode there and was reported as a forged message).
TEST(Messages, AnOverlongReasonIsCutToWhatTheReaderTakes) {
  std::string reason;
  while (reason.size() < 3 * kMaxTextBytes)
    reason += "n\u00e9ud-0042, ";  // two-byte characters: the cut lands on a boundary
  for (const Message& message :
       {Message{Abort{reason}}, Message{Failed{2, reason}}, Message{Orphaned{0, 7, reason}}}) {
    const std::optional<Message> decoded = decode(encode(message));
    ASSERT_TRUE(decoded) << message_name(message);
    const std::string got = std::visit(
        [](const auto& m) -> std::string {
          if constexpr (requires { m.reason; })
            return m.reason;
          return {};
        },
        *decoded);
    EXPECT_LE(got.size(), kMaxTextBytes);
    EXPECT_GT(got.size(), kMaxTextBytes - 4);
    EXPECT_EQ(reason.compare(0, got.size(), got), 0) << "a prefix of the reason";
  }
}

TEST(Messages, EveryTruncationAndExtensionIsRejected) {
  for (const Message& message : samples()) {
    const auto bytes = encode(message);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_FALSE(decode(std::span(bytes).first(n))) << message_name(message) << " cut at " << n;
    }
    auto longer = bytes;
    longer.push_back(std::byte{0});
    EXPECT_FALSE(decode(longer)) << message_name(message) << " with a trailing byte";
  }
}

TEST(Messages, MoreParentsOrTreesThanTheTopologiesHaveAreRejected) {
  Plan plan;
  plan.parents = {{1, {}}, {2, {}}, {3, {}}};
  EXPECT_FALSE(decode(encode(plan)));
  plan.parents.pop_back();
  EXPECT_TRUE(decode(encode(plan)));
  EXPECT_FALSE(decode(encode(Region{{}, 0, 2})));
  EXPECT_TRUE(decode(encode(Region{{}, 0, 1})));
}

TEST(Messages, ATreeFlagOtherThanZeroOrOneIsRejected) {
  for (const std::uint8_t flag : {0, 1, 2, 255}) {
    Probe probe;
    probe.tree = flag;
    Plan plan;
    plan.tree = flag;
    EXPECT_EQ(decode(encode(probe)).has_value(), flag <= 1) << int(flag);
    EXPECT_EQ(decode(encode(plan)).has_value(), flag <= 1) << int(flag);
  }
}

TEST(Messages, AProbeForACachedTreeIsRejected) {
  Probe probe;
  probe.cache_dir = "/tmp/imgcast-cache-0";
  EXPECT_TRUE(decode(encode(probe)));
  probe.tree = 1;
  EXPECT_FALSE(decode(encode(probe)));
}

TEST(Messages, ResultWithUnknownLinkKindBitsIsRejected) {
  EXPECT_TRUE(decode(encode(Result{1, 0, kLinkKindBits})));
  EXPECT_FALSE(decode(encode(Result{1, 0, 1})));     // bit 0 names no transport
  EXPECT_FALSE(decode(encode(Result{1, 0, 0x10})));  // nor does bit 4
}

TEST(Messages, ABurstOverItsBoundIsRejected) {
  auto bytes = encode(Burst{1, std::vector<std::byte>(kMaxBurstBytes + 1)});
  EXPECT_FALSE(decode(bytes));
}

TEST(Messages, UnknownTypeAndBadChannelAreRejected) {
  EXPECT_FALSE(decode(std::vector<std::byte>{std::byte{0}}));
  EXPECT_FALSE(decode(std::vector<std::byte>{std::byte{200}}));
  auto hello = encode(Hello{});
  hello[3] = std::byte{9};  // channel byte
  EXPECT_FALSE(decode(hello));
}

TEST(Messages, OversizedLengthPrefixIsRejectedWithoutAllocating) {
  // A Failed message whose reason claims 4 GiB.
  std::vector<std::byte> bytes = {std::byte{7},    std::byte{2},    std::byte{0xff},
                                  std::byte{0xff}, std::byte{0xff}, std::byte{0xff}};
  EXPECT_FALSE(decode(bytes));
}

TEST(Messages, RandomBytesNeverCrashTheDecoder) {
  std::mt19937 random(1);
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::byte> bytes(random() % 64);
    for (auto& b : bytes)
      b = static_cast<std::byte>(random());
    if (!bytes.empty())
      bytes[0] = static_cast<std::byte>(1 + random() % 12);
    (void)decode(bytes);
  }
}

}  // namespace
}  // namespace imgcast::replicator
