// Write authority on the TCP backend, with real connections: a region takes writes only from the
// endpoints its owner granted (MemoryRegion::allow_writer). A second connection that holds the
// right region id and key (as a sniffer of the Region message would) is refused before a byte
// lands; a revoked or deregistered region refuses its former writer; an endpoint not yet trusted
// takes only small control messages.
#include <algorithm>

#include "tests/transport/conformance.h"
#include "tests/transport/random_bytes.h"
#include "transport/tcp/tcp_context.h"

namespace imgcast::transport::test {
namespace {

using std::chrono::milliseconds;

// One receiver and two senders, each on a connection of its own to the receiver's listener.
class WriteAuthority : public ::testing::Test {
 protected:
  void SetUp() override {
    receiver_ctx_ = tcp::make_tcp_context({});
    sender_ctx_ = tcp::make_tcp_context({});
    listener_ = receiver_ctx_->listen({"127.0.0.1", "", 0});
    granted_ = sender_ctx_->connect(listener_->address(), std::chrono::seconds(5));
    granted_in_ = accept();
    stranger_ = sender_ctx_->connect(listener_->address(), std::chrono::seconds(5));
    stranger_in_ = accept();
    target_memory_.assign(kSize, std::byte{0});
    target_ = receiver_ctx_->register_memory(target_memory_, Access::kRemoteWrite);
    target_->allow_writer(*granted_in_);
    source_memory_ = random_bytes(kSize, 3);
    source_ = sender_ctx_->register_memory(source_memory_, Access::kLocalRead);
    // Both hold the same descriptor: the key is no secret from a sniffer.
    granted_remote_ = granted_->import_region(target_->descriptor());
    stranger_remote_ = stranger_->import_region(target_->descriptor());
  }

  std::unique_ptr<Endpoint> accept() {
    std::unique_ptr<Endpoint> accepted;
    EXPECT_TRUE(poll_until(*receiver_ctx_, receiver_seen_, [&] {
      for (auto* a : all_of<PeerAccepted>(receiver_seen_)) {
        if (a->endpoint)
          accepted = std::move(a->endpoint);
      }
      return accepted != nullptr;
    }));
    receiver_seen_.clear();
    return accepted;
  }

  Status write(Endpoint& from, const RemoteRegion& remote, std::uint64_t offset,
               std::uint32_t length, std::uint32_t imm) {
    return from.post_write({source_.get(), offset, &remote, offset, length, imm, 7, imm});
  }

  // Polls both sides until `done`; the receiver's completions are kept in receiver_seen_.
  bool run_until(const std::function<bool()>& done) {
    return poll_both_until(*sender_ctx_, sender_seen_, *receiver_ctx_, receiver_seen_, done);
  }
  PeerFailed* failure_of(const Endpoint* peer) {
    for (auto* f : all_of<PeerFailed>(receiver_seen_)) {
      if (f->peer == peer)
        return f;
    }
    return nullptr;
  }
  bool untouched(std::size_t from, std::size_t to) const {
    return std::all_of(target_memory_.begin() + from, target_memory_.begin() + to,
                       [](std::byte b) { return b == std::byte{0}; });
  }

  static constexpr std::size_t kSize = 256 * 1024;
  static constexpr std::uint32_t kHalf = kSize / 2;
  std::unique_ptr<Context> receiver_ctx_, sender_ctx_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Endpoint> granted_, granted_in_, stranger_, stranger_in_;
  std::vector<std::byte> target_memory_, source_memory_;
  std::unique_ptr<MemoryRegion> target_, source_;
  std::unique_ptr<RemoteRegion> granted_remote_, stranger_remote_;
  std::vector<Completion> sender_seen_, receiver_seen_;
};

TEST_F(WriteAuthority, AConnectionThatWasNotGrantedIsRefusedWithTheRightKey) {
  ASSERT_TRUE(write(*stranger_, *stranger_remote_, kHalf, kHalf, 2).is_ok());
  ASSERT_TRUE(run_until([&] { return failure_of(stranger_in_.get()) != nullptr; }));
  const PeerFailed* failed = failure_of(stranger_in_.get());
  EXPECT_EQ(failed->status.code(), StatusCode::kPermissionDenied) << failed->status.to_string();
  EXPECT_NE(failed->status.message().find("not granted"), std::string::npos)
      << failed->status.message();
  EXPECT_TRUE(all_of<WriteArrived>(receiver_seen_).empty());
  EXPECT_TRUE(untouched(0, kSize));

  // The granted connection is unaffected and its write lands.
  ASSERT_TRUE(write(*granted_, *granted_remote_, 0, kHalf, 1).is_ok());
  ASSERT_TRUE(run_until([&] { return all_of<WriteArrived>(receiver_seen_).size() == 1; }));
  EXPECT_EQ(all_of<WriteArrived>(receiver_seen_).front()->from, granted_in_.get());
  EXPECT_TRUE(std::equal(source_memory_.begin(), source_memory_.begin() + kHalf,
                         target_memory_.begin()));
  EXPECT_TRUE(untouched(kHalf, kSize));
  EXPECT_EQ(failure_of(granted_in_.get()), nullptr);
}

TEST_F(WriteAuthority, ARevokedWriterIsRefused) {
  target_->revoke_writer(*granted_in_);
  ASSERT_TRUE(write(*granted_, *granted_remote_, 0, kHalf, 1).is_ok());
  ASSERT_TRUE(run_until([&] { return failure_of(granted_in_.get()) != nullptr; }));
  EXPECT_EQ(failure_of(granted_in_.get())->status.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(all_of<WriteArrived>(receiver_seen_).empty());
  EXPECT_TRUE(untouched(0, kSize));
}

TEST_F(WriteAuthority, AWriteAfterTheRegionIsDroppedIsRefused) {
  ASSERT_TRUE(write(*granted_, *granted_remote_, 0, kHalf, 1).is_ok());
  ASSERT_TRUE(run_until([&] { return all_of<WriteArrived>(receiver_seen_).size() == 1; }));
  // What DataNode::seal does once the last chunk is verified: the registration goes.
  target_.reset();
  const std::vector<std::byte> before = target_memory_;
  ASSERT_TRUE(write(*granted_, *granted_remote_, kHalf, kHalf, 2).is_ok());
  ASSERT_TRUE(run_until([&] { return failure_of(granted_in_.get()) != nullptr; }));
  EXPECT_EQ(failure_of(granted_in_.get())->status.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(all_of<WriteArrived>(receiver_seen_).size(), 1u);
  EXPECT_EQ(target_memory_, before);
}

TEST_F(WriteAuthority, UntrustedEndpointsTakeOnlySmallControlMessages) {
  // Just within the bound: taken before trust.
  const auto small = random_bytes(Endpoint::kMaxUntrustedControlBytes, 4);
  ASSERT_TRUE(granted_->send_control(small).is_ok());
  ASSERT_TRUE(run_until([&] { return all_of<ControlArrived>(receiver_seen_).size() == 1; }));
  EXPECT_EQ(all_of<ControlArrived>(receiver_seen_).front()->bytes, small);
  // After trust(), up to the API's bound.
  granted_in_->trust();
  const auto big = random_bytes(Endpoint::kMaxControlBytes, 5);
  ASSERT_TRUE(granted_->send_control(big).is_ok());
  ASSERT_TRUE(run_until([&] { return all_of<ControlArrived>(receiver_seen_).size() == 2; }));
  EXPECT_EQ(all_of<ControlArrived>(receiver_seen_).back()->bytes, big);
  // One byte over the small bound on a connection nobody trusted: refused at the header.
  ASSERT_TRUE(stranger_->send_control(random_bytes(Endpoint::kMaxUntrustedControlBytes + 1, 6))
                  .is_ok());
  ASSERT_TRUE(run_until([&] { return failure_of(stranger_in_.get()) != nullptr; }));
  EXPECT_EQ(failure_of(stranger_in_.get())->status.code(), StatusCode::kProtocolError);
  EXPECT_EQ(all_of<ControlArrived>(receiver_seen_).size(), 2u);
}

}  // namespace
}  // namespace imgcast::transport::test
