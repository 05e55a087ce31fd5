// The --transport auto composite (transport/fallback): its packed addresses and keys refuse
// hostile bytes; a link runs on RDMA when that works; a link whose RDMA setup fails at once
// (UCX: a dead address), fails before the peer's first message, or meets a silent peer moves to
// TCP by itself, in well under a connect timeout, and the peer still gets the handshake's
// opening; a node without RDMA (no context, registration refused) publishes and uses TCP alone.
// The "RDMA" inner context is UCX where it is built in, else (and for the silent-peer and
// refused-registration cases) a second TCP context: the composite only needs a Context. And
// verbs without a device: auto's composite runs on TCP alone.
#include "transport/fallback/fallback_context.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/transport/conformance.h"
#include "transport/error.h"
#include "transport/fallback/two_halves.h"
#include "transport/tcp/tcp_context.h"
#if IMGCAST_HAVE_UCX
#include "transport/ucx/ucx_context.h"
#endif

namespace imgcast::transport::test {
namespace {

using namespace std::chrono_literals;
using fallback::FallbackContext;
using fallback::pack;
using fallback::unpack;
using Clock = std::chrono::steady_clock;

std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> out(text.size());
  std::memcpy(out.data(), text.data(), text.size());
  return out;
}

TEST(TwoHalves, RoundTripsAndRefusesMalformedBytes) {
  const auto rdma = bytes_of("rdma-address");
  const auto tcp = bytes_of("127.0.0.1:4711");
  const auto packed = pack(rdma, tcp);
  const auto halves = unpack(packed);
  ASSERT_TRUE(halves);
  EXPECT_EQ(halves->rdma, rdma);
  EXPECT_EQ(halves->tcp, tcp);
  ASSERT_TRUE(unpack(pack({}, tcp)));
  EXPECT_TRUE(unpack(pack({}, tcp))->rdma.empty());

  EXPECT_FALSE(unpack(pack(rdma, {})));  // no TCP half: nothing every peer can use
  for (std::size_t cut = 0; cut < packed.size(); ++cut) {
    EXPECT_FALSE(unpack(std::span(packed).first(cut))) << "cut at " << cut;
  }
  auto trailing = packed;
  trailing.push_back(std::byte{0});
  EXPECT_FALSE(unpack(trailing));
  auto magic = packed;
  magic[0] ^= std::byte{1};
  EXPECT_FALSE(unpack(magic));
  auto too_long = packed;
  too_long[4] = std::byte{0xff};  // the RDMA half claims more bytes than there are
  too_long[5] = std::byte{0xff};
  EXPECT_FALSE(unpack(too_long));
}

// A context that delegates to a TCP context but refuses every registration, as an RDMA backend
// does under a tiny RLIMIT_MEMLOCK.
class RefusingContext final : public Context {
 public:
  RefusingContext() : inner_(tcp::make_tcp_context({})) {}
  Kind kind() const noexcept override { return inner_->kind(); }
  std::unique_ptr<MemoryRegion> register_memory(std::span<std::byte>, Access, int = -1) override {
    throw Error(StatusCode::kUnavailable, "memory lock limit too low (test)");
  }
  std::unique_ptr<Listener> listen(const ListenOptions& options) override {
    return inner_->listen(options);
  }
  std::unique_ptr<Endpoint> connect(std::span<const std::byte> address,
                                    std::chrono::milliseconds timeout) override {
    ++connects;
    return inner_->connect(address, timeout);
  }
  Status poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override {
    return inner_->poll(out, timeout);
  }
  int wait_fd() const noexcept override { return inner_->wait_fd(); }
  int connects = 0;

 private:
  std::unique_ptr<Context> inner_;
};

std::unique_ptr<Context> make_rdma() {
#if IMGCAST_HAVE_UCX
  return ucx::make_ucx_context({});
#else
  return tcp::make_tcp_context({});
#endif
}

Kind rdma_kind() {
#if IMGCAST_HAVE_UCX
  return Kind::kUcx;
#else
  return Kind::kTcp;
#endif
}

// A child (connects, registers a region for its parent's writes) and a parent (listens, writes).
struct Link {
  std::unique_ptr<Context> parent_ctx;
  std::unique_ptr<Context> child_ctx;
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Endpoint> child_end;   // the child's endpoint to its parent
  std::unique_ptr<Endpoint> parent_end;  // the parent's endpoint to its child
  std::vector<Completion> parent_seen, child_seen;

  bool poll_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    return poll_both_until(*parent_ctx, parent_seen, *child_ctx, child_seen, done, limit);
  }

  // Hello from the child, an answer from the parent, then one write of `size` bytes into the
  // child's region; checks every step.
  void run_handshake_and_write() {
    ASSERT_TRUE(child_end->send_control(bytes_of("hello")).is_ok());
    ASSERT_TRUE(poll_until([&] { return !all_of<ControlArrived>(parent_seen).empty(); }));
    auto accepted = all_of<PeerAccepted>(parent_seen);
    ASSERT_EQ(accepted.size(), 1u);
    parent_end = std::move(accepted.front()->endpoint);
    EXPECT_EQ(all_of<ControlArrived>(parent_seen).front()->bytes, bytes_of("hello"));
    EXPECT_EQ(all_of<ControlArrived>(parent_seen).front()->from, parent_end.get());
    ASSERT_TRUE(parent_end->send_control(bytes_of("challenge")).is_ok());
    ASSERT_TRUE(poll_until([&] { return !all_of<ControlArrived>(child_seen).empty(); }));
    EXPECT_EQ(all_of<ControlArrived>(child_seen).front()->from, child_end.get());

    std::vector<std::byte> target(1 << 16), source(1 << 16);
    for (std::size_t i = 0; i < source.size(); ++i)
      source[i] = static_cast<std::byte>(i * 7);
    auto target_region = child_ctx->register_memory(target, Access::kRemoteWrite);
    target_region->allow_writer(*child_end);
    auto source_region = parent_ctx->register_memory(source, Access::kLocalRead);
    // The descriptor travels as bytes, as in the replicator's Region message.
    const auto descriptor = RegionDescriptor::decode(target_region->descriptor().encode());
    ASSERT_TRUE(descriptor);
    auto remote = parent_end->import_region(*descriptor);
    WriteRequest write{source_region.get(),
                       0,
                       remote.get(),
                       0,
                       static_cast<std::uint32_t>(source.size()),
                       3,
                       99,
                       1};
    ASSERT_TRUE(parent_end->post_write(write).is_ok());
    ASSERT_TRUE(poll_until([&] {
      return !all_of<WriteArrived>(child_seen).empty() && !all_of<WriteDone>(parent_seen).empty();
    }));
    EXPECT_TRUE(all_of<WriteDone>(parent_seen).front()->status.is_ok());
    EXPECT_EQ(all_of<WriteArrived>(child_seen).front()->imm, 3u);
    EXPECT_EQ(target, source);
    remote.reset();
  }
};

std::unique_ptr<Context> composite(std::unique_ptr<Context> rdma,
                                   std::chrono::milliseconds first_contact = 5s) {
  return std::make_unique<FallbackContext>(std::move(rdma), tcp::make_tcp_context({}),
                                           "no RDMA here (test)", first_contact);
}

TEST(FallbackContext, LinkRunsOnRdmaWhenItWorks) {
  Link link;
  link.parent_ctx = composite(make_rdma());
  link.child_ctx = composite(make_rdma());
  link.listener = link.parent_ctx->listen({"127.0.0.1", "", 0});
  ASSERT_FALSE(unpack(link.listener->address())->rdma.empty());
  link.child_end = link.child_ctx->connect(link.listener->address(), 5s);
  link.run_handshake_and_write();
  EXPECT_EQ(link.child_end->kind(), rdma_kind());
  EXPECT_EQ(link.parent_end->kind(), rdma_kind());
}

TEST(FallbackContext, DeadRdmaAddressMovesTheLinkToTcpAtOnce) {
  Link link;
  link.parent_ctx = composite(make_rdma());
  link.child_ctx = composite(make_rdma());
  link.listener = link.parent_ctx->listen({"127.0.0.1", "", 0});
  // The RDMA half names a listener that is gone; the TCP half is the parent's.
  auto gone_ctx = make_rdma();
  auto gone = gone_ctx->listen({"127.0.0.1", "", 0});
  const std::vector<std::byte> dead(gone->address().begin(), gone->address().end());
  gone.reset();
  const auto address = pack(dead, unpack(link.listener->address())->tcp);
  const auto start = Clock::now();
  link.child_end = link.child_ctx->connect(address, 20s);
  link.run_handshake_and_write();
  EXPECT_LT(Clock::now() - start, 3s) << "a refused RDMA address must not cost a timeout";
  EXPECT_EQ(link.child_end->kind(), Kind::kTcp);
  EXPECT_EQ(link.parent_end->kind(), Kind::kTcp);
}

TEST(FallbackContext, SilentRdmaPeerMovesTheLinkToTcpAtTheFirstContactDeadline) {
  Link link;
  link.parent_ctx = composite(nullptr);
  // The "RDMA" backend is TCP here: its connect succeeds (the kernel accepts) to a listener
  // whose context nobody polls, so the peer never says a word.
  link.child_ctx = composite(tcp::make_tcp_context({}), 300ms);
  auto silent_ctx = tcp::make_tcp_context({});
  auto silent = silent_ctx->listen({"127.0.0.1", "", 0});
  link.listener = link.parent_ctx->listen({"127.0.0.1", "", 0});
  const auto address = pack(silent->address(), unpack(link.listener->address())->tcp);
  const auto start = Clock::now();
  link.child_end = link.child_ctx->connect(address, 20s);
  link.run_handshake_and_write();
  const auto took = Clock::now() - start;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 3s);
}

TEST(FallbackContext, NodeWithoutRdmaPublishesAndUsesTcpAlone) {
  Link link;
  link.parent_ctx = composite(nullptr);
  link.child_ctx = composite(make_rdma());
  link.listener = link.parent_ctx->listen({"127.0.0.1", "", 0});
  EXPECT_TRUE(unpack(link.listener->address())->rdma.empty());
  EXPECT_EQ(link.parent_ctx->kind(), Kind::kTcp);
  link.child_end = link.child_ctx->connect(link.listener->address(), 5s);
  link.run_handshake_and_write();
  EXPECT_EQ(link.child_end->kind(), Kind::kTcp);
}

TEST(FallbackContext, RefusedRegistrationGivesRdmaUpForTheWholeNode) {
  Link link;
  link.parent_ctx = composite(tcp::make_tcp_context({}));
  auto refusing = std::make_unique<RefusingContext>();
  RefusingContext& refusing_ref = *refusing;
  link.child_ctx = composite(std::move(refusing));
  link.listener = link.parent_ctx->listen({"127.0.0.1", "", 0});
  ASSERT_FALSE(unpack(link.listener->address())->rdma.empty());
  std::vector<std::byte> memory(4096);
  auto region = link.child_ctx->register_memory(memory, Access::kRemoteWrite);  // refused inside
  EXPECT_TRUE(unpack(region->descriptor().key)->rdma.empty());
  link.child_end = link.child_ctx->connect(link.listener->address(), 5s);
  EXPECT_EQ(refusing_ref.connects, 0) << "a node without RDMA registrations must not connect so";
  link.run_handshake_and_write();
}

// Verbs with no device (this machine, most CI): explicit verbs cannot be made at all, while the
// factory's auto composite runs on TCP alone and its links work.
TEST(FallbackContext, VerbsWithoutADeviceRunsOnTcpUnderAuto) {
  if (probe(Kind::kVerbs).usable) {
    GTEST_SKIP() << "an RDMA device is up here: " << probe(Kind::kVerbs).reason;
  }
  EXPECT_THROW((void)make_context(Kind::kVerbs, {}), Error);
  ContextOptions options;
  options.tcp_fallback = true;
  Link link;
  link.parent_ctx = make_context(Kind::kVerbs, options);
  link.child_ctx = make_context(Kind::kVerbs, options);
  EXPECT_EQ(link.parent_ctx->kind(), Kind::kTcp);
  link.listener = link.parent_ctx->listen({"127.0.0.1", "", 0});
  EXPECT_TRUE(unpack(link.listener->address())->rdma.empty());
  link.child_end = link.child_ctx->connect(link.listener->address(), 5s);
  link.run_handshake_and_write();
  EXPECT_EQ(link.child_end->kind(), Kind::kTcp);
}

}  // namespace
}  // namespace imgcast::transport::test
