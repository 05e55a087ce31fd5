// The verbs backend on a real device (an HCA, or Soft-RoCE: rdma link add rxe0 type rxe netdev
// IFACE): what the shared conformance suite does not reach — writes split across several MRs,
// a control message of the maximum size, credits recycled far past the receive depth, and a
// remote access error that must fail the endpoint naming its peer. Without a device each test
// skips with the probe's reason, except the one that checks how "no device" is reported.
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/transport/conformance.h"
#include "tests/transport/random_bytes.h"
#include "transport/error.h"

namespace imgcast::transport::test {
namespace {

TEST(VerbsWithoutDevice, IsReportedUnavailableWithTheReason) {
  const Availability availability = probe(Kind::kVerbs);
  if (availability.usable)
    GTEST_SKIP() << "an RDMA device is present: " << availability.reason;
  EXPECT_FALSE(availability.reason.empty());
  try {
    (void)make_context(Kind::kVerbs, {});
    ADD_FAILURE() << "make_context(verbs) succeeded without a device";
  } catch (const Error& error) {
    EXPECT_EQ(error.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(std::string(error.what()).find(availability.reason), std::string::npos)
        << error.what();
  }
  EXPECT_THROW((void)choose_kind("verbs"), Error);
  EXPECT_NE(choose_kind("auto"), Kind::kVerbs);
}

class VerbsDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Availability availability = probe(Kind::kVerbs);
    if (!availability.usable)
      GTEST_SKIP() << "verbs cannot run here: " << availability.reason;
  }
  void TearDown() override { ::unsetenv("IMGCAST_RDMA_MR_BYTES"); }

  void connect(const ContextOptions& options = {}) {
    sender_ctx_ = make_context(Kind::kVerbs, options);
    receiver_ctx_ = make_context(Kind::kVerbs, options);
    listener_ = receiver_ctx_->listen({"127.0.0.1", "", 0});
    sender_ = sender_ctx_->connect(listener_->address(), std::chrono::seconds(5));
    ASSERT_TRUE(poll_both_until(*sender_ctx_, sender_seen_, *receiver_ctx_, receiver_seen_,
                                [&] { return !all_of<PeerAccepted>(receiver_seen_).empty(); }));
    receiver_ = std::move(all_of<PeerAccepted>(receiver_seen_).front()->endpoint);
    receiver_seen_.clear();
  }

  std::unique_ptr<Context> sender_ctx_, receiver_ctx_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Endpoint> sender_, receiver_;
  std::vector<Completion> sender_seen_, receiver_seen_;
};

TEST_F(VerbsDeviceTest, WritesSplitAcrossSeveralMrsLandIntact) {
  ::setenv("IMGCAST_RDMA_MR_BYTES", "1048576", 1);  // 1 MiB MRs: a 4 MiB region has five
  connect();
  constexpr std::size_t kSize = (4 << 20) + 5;
  auto source_memory = random_bytes(kSize, 1);
  std::vector<std::byte> target_memory(kSize);
  auto source = sender_ctx_->register_memory(source_memory, Access::kLocalRead);
  auto target = receiver_ctx_->register_memory(target_memory, Access::kRemoteWrite);
  auto remote = sender_->import_region(*RegionDescriptor::decode(target->descriptor().encode()));
  // Chunks of 700 KiB: most of them straddle an MR boundary on both sides.
  constexpr std::uint32_t kChunk = 700 << 10;
  std::uint32_t chunks = 0;
  for (std::uint64_t offset = 0; offset < kSize; offset += kChunk, ++chunks) {
    const auto length = static_cast<std::uint32_t>(std::min<std::uint64_t>(kChunk, kSize - offset));
    WriteRequest r{source.get(), offset, remote.get(), offset, length, chunks, ~offset, chunks};
    ASSERT_TRUE(sender_->post_write(r).is_ok());
  }
  ASSERT_TRUE(poll_both_until(*sender_ctx_, sender_seen_, *receiver_ctx_, receiver_seen_, [&] {
    return all_of<WriteArrived>(receiver_seen_).size() == chunks;
  }));
  EXPECT_EQ(target_memory, source_memory);
  const auto arrived = all_of<WriteArrived>(receiver_seen_);
  for (std::uint32_t i = 0; i < chunks; ++i) {
    EXPECT_EQ(arrived[i]->imm, i);
    EXPECT_EQ(arrived[i]->notice, ~(std::uint64_t{i} * kChunk));
  }
}

TEST_F(VerbsDeviceTest, TheLargestControlMessageArrivesWholeAndInOrder) {
  connect();
  const auto big = random_bytes(Endpoint::kMaxControlBytes, 2);
  ASSERT_TRUE(sender_->send_control(big).is_ok());
  ASSERT_TRUE(sender_->send_control({}).is_ok());  // an empty one, after it
  ASSERT_TRUE(poll_both_until(*sender_ctx_, sender_seen_, *receiver_ctx_, receiver_seen_,
                              [&] { return all_of<ControlArrived>(receiver_seen_).size() == 2; }));
  const auto arrived = all_of<ControlArrived>(receiver_seen_);
  EXPECT_EQ(arrived[0]->bytes, big);
  EXPECT_TRUE(arrived[1]->bytes.empty());
}

// Far more messages than either receive queue holds, in both directions at once: the credits
// must come back, or this stops (RNR would fail the QP instead).
TEST_F(VerbsDeviceTest, CreditsRecycleFarPastTheReceiveDepth) {
  ContextOptions small;
  small.max_writes_in_flight = 2;
  connect(small);
  auto source_memory = random_bytes(4096, 3);
  std::vector<std::byte> target_memory(4096);
  auto source = sender_ctx_->register_memory(source_memory, Access::kLocalRead);
  auto target = receiver_ctx_->register_memory(target_memory, Access::kRemoteWrite);
  auto remote = sender_->import_region(target->descriptor());
  constexpr std::uint32_t kWrites = 2000;
  std::uint32_t posted = 0;
  std::size_t replies = 0;
  ASSERT_TRUE(poll_both_until(
      *sender_ctx_, sender_seen_, *receiver_ctx_, receiver_seen_,
      [&] {
        while (posted < kWrites) {
          WriteRequest r{source.get(), 0, remote.get(), 0, 64, posted, posted, posted};
          const Status s = sender_->post_write(r);
          if (s.code() == StatusCode::kBusy)
            break;
          EXPECT_TRUE(s.is_ok()) << s.to_string();
          ++posted;
        }
        // The receiver answers every arrival with a control message.
        for (std::size_t i = replies; i < all_of<WriteArrived>(receiver_seen_).size(); ++i) {
          EXPECT_TRUE(receiver_->send_control(random_bytes(16, i)).is_ok());
          ++replies;
        }
        return all_of<ControlArrived>(sender_seen_).size() == kWrites;
      },
      std::chrono::seconds(60)));
  EXPECT_EQ(all_of<WriteDone>(sender_seen_).size(), kWrites);
  EXPECT_TRUE(all_of<PeerFailed>(sender_seen_).empty());
}

TEST_F(VerbsDeviceTest, ARemoteAccessErrorFailsTheEndpointNamingThePeer) {
  connect();
  auto source_memory = random_bytes(1 << 16, 4);
  std::vector<std::byte> target_memory(1 << 16);
  auto source = sender_ctx_->register_memory(source_memory, Access::kLocalRead);
  auto target = receiver_ctx_->register_memory(target_memory, Access::kRemoteWrite);
  auto remote = sender_->import_region(target->descriptor());
  target.reset();  // deregistered: its rkey is void now
  WriteRequest r{source.get(), 0, remote.get(), 0, 4096, 0, 0, 42};
  ASSERT_TRUE(sender_->post_write(r).is_ok());
  ASSERT_TRUE(poll_both_until(*sender_ctx_, sender_seen_, *receiver_ctx_, receiver_seen_,
                              [&] { return !all_of<PeerFailed>(sender_seen_).empty(); }));
  const auto done = all_of<WriteDone>(sender_seen_);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done.front()->cookie, 42u);
  EXPECT_FALSE(done.front()->status.is_ok());
  const std::string message = all_of<PeerFailed>(sender_seen_).front()->status.message();
  EXPECT_NE(message.find(sender_->peer_name()), std::string::npos) << message;
  EXPECT_NE(message.find("remote access"), std::string::npos) << message;
  EXPECT_FALSE(sender_->post_write(r).is_ok());  // latched
}

TEST_F(VerbsDeviceTest, AnUnknownDeviceIsRefusedNamingTheVariable) {
  ::setenv("IMGCAST_RDMA_DEVICE", "nosuchdev0", 1);
  try {
    (void)make_context(Kind::kVerbs, {});
    ADD_FAILURE() << "a context on a device that does not exist";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("nosuchdev0"), std::string::npos) << error.what();
  }
  ::unsetenv("IMGCAST_RDMA_DEVICE");
}

}  // namespace
}  // namespace imgcast::transport::test
