// TCP-specific behaviour the backend-neutral conformance suite cannot express: the address
// blob, connect's failures (malformed, refused, timed out), IPv6, and what a peer sees when
// only the endpoint (not the whole process) goes away.
#include "transport/tcp/tcp_context.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "tests/transport/conformance.h"
#include "transport/error.h"
#include "transport/host_port.h"

namespace imgcast::transport::test {
namespace {

using std::chrono::milliseconds;

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto* p = reinterpret_cast<const std::byte*>(text.data());
  return {p, p + text.size()};
}

std::string text_of(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// The Error connect throws, or a default Status when it did not throw.
Status connect_error(Context& context, std::span<const std::byte> address, milliseconds timeout) {
  try {
    auto endpoint = context.connect(address, timeout);
  } catch (const Error& error) {
    return error.status();
  }
  return Status::ok();
}

TEST(TcpAddress, ParsesHostPortAndBracketedIpv6) {
  const auto v4 = HostPort::parse(bytes_of("node3:4711"));
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "node3");
  EXPECT_EQ(v4->port, 4711);
  EXPECT_EQ(v4->to_string(), "node3:4711");
  const auto v6 = HostPort::parse(bytes_of("[fe80::1]:65535"));
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "fe80::1");
  EXPECT_EQ(v6->port, 65535);
  EXPECT_EQ(v6->to_string(), "[fe80::1]:65535");
}

TEST(TcpAddress, RejectsMalformedBlobs) {
  for (const char* bad : {"", "node3", "node3:", ":4711", "node3:0", "node3:65536", "node3:47x1",
                          "node3:-1", "[::1:4711", "[]:4711", "no de:1", "node3:4711 "}) {
    EXPECT_FALSE(HostPort::parse(bytes_of(bad))) << "'" << bad << "'";
  }
  std::string with_nul = "node3:4711";
  with_nul[2] = '\0';
  EXPECT_FALSE(HostPort::parse(bytes_of(with_nul)));
  const std::string too_long = std::string(Listener::kMaxAddressBytes, 'a') + ":1";
  EXPECT_FALSE(HostPort::parse(bytes_of(too_long)));
}

TEST(TcpConnect, MalformedAddressIsAnInvalidArgumentShownReadably) {
  auto context = tcp::make_tcp_context({});
  std::vector<std::byte> garbage = bytes_of(
      "node3:47\x01"
      "11");
  const Status status = connect_error(*context, garbage, milliseconds(100));
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("'node3:47?11'"), std::string::npos) << status.message();
  garbage.assign(4 * Listener::kMaxAddressBytes, std::byte{'x'});
  EXPECT_EQ(connect_error(*context, garbage, milliseconds(100)).code(),
            StatusCode::kInvalidArgument);
}

TEST(TcpConnect, RefusedFailsAtOnceNamingTheAddress) {
  auto context = tcp::make_tcp_context({});
  auto listener = context->listen({"127.0.0.1", "", 0});
  const auto address = bytes_of(text_of(listener->address()));
  listener.reset();
  const auto start = std::chrono::steady_clock::now();
  const Status status = connect_error(*context, address, milliseconds(5000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(status.code(), StatusCode::kIoError);
  EXPECT_NE(status.message().find(text_of(address)), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("refused"), std::string::npos) << status.message();
}

// A listener whose accept queue is full drops SYNs, so the handshake never completes: the one
// way to make a local connect hang without depending on the network.
TEST(TcpConnect, TimesOutNamingTheAddressAndTheTimeout) {
  const int stuck = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(stuck, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(stuck, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(stuck, 0), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(::getsockname(stuck, reinterpret_cast<sockaddr*>(&address), &length), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {  // never accepted: they fill the queue
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    (void)::connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address);
    fillers.push_back(s);
  }
  const std::string name = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  auto context = tcp::make_tcp_context({});
  const auto start = std::chrono::steady_clock::now();
  const Status status = connect_error(*context, bytes_of(name), milliseconds(300));
  const auto took = std::chrono::steady_clock::now() - start;
  for (int s : fillers)
    ::close(s);
  ::close(stuck);
  EXPECT_EQ(status.code(), StatusCode::kTimeout) << status.to_string();
  EXPECT_EQ(status.message(), "connect to " + name + " timed out after 300 ms");
  EXPECT_GE(took, milliseconds(290));
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(TcpListen, AdvertisesTheAdvertiseHost) {
  auto context = tcp::make_tcp_context({});
  auto listener = context->listen({"127.0.0.1", "node3.example", 0});
  const std::string name = listener->name();
  EXPECT_EQ(name.rfind("node3.example:", 0), 0u) << name;
  EXPECT_EQ(text_of(listener->address()), name);
  EXPECT_LE(listener->address().size(), Listener::kMaxAddressBytes);
}

TEST(TcpListen, UnresolvableHostThrowsNamingIt) {
  auto context = tcp::make_tcp_context({});
  try {
    auto listener = context->listen({"no-such-host.invalid", "", 0});
    FAIL() << "listening on an unresolvable host succeeded";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("no-such-host.invalid"), std::string::npos)
        << error.what();
  }
}

// Loopback over IPv6: the address blob brackets the host and a write lands.
TEST(TcpListen, Ipv6LoopbackCarriesWrites) {
  auto receiver_ctx = tcp::make_tcp_context({});
  std::unique_ptr<Listener> listener;
  try {
    listener = receiver_ctx->listen({"::1", "", 0});
  } catch (const Error& error) {
    GTEST_SKIP() << "no IPv6 loopback here: " << error.what();
  }
  EXPECT_EQ(listener->name().rfind("[::1]:", 0), 0u) << listener->name();
  auto sender_ctx = tcp::make_tcp_context({});
  auto sender = sender_ctx->connect(listener->address(), std::chrono::seconds(5));
  std::vector<std::byte> target_memory(4096), source_memory(4096, std::byte{0x6b});
  auto target = receiver_ctx->register_memory(target_memory, Access::kRemoteWrite);
  auto source = sender_ctx->register_memory(source_memory, Access::kLocalRead);
  auto remote = sender->import_region(target->descriptor());
  ASSERT_TRUE(sender->post_write({source.get(), 0, remote.get(), 0, 4096, 1, 2, 3}).is_ok());
  std::vector<Completion> sender_seen, receiver_seen;
  std::unique_ptr<Endpoint> receiver;
  ASSERT_TRUE(poll_both_until(*sender_ctx, sender_seen, *receiver_ctx, receiver_seen, [&] {
    for (auto* a : all_of<PeerAccepted>(receiver_seen)) {
      if (a->endpoint) {
        receiver = std::move(a->endpoint);
        target->allow_writer(*receiver);  // before the next poll reads the write
      }
    }
    return !all_of<WriteArrived>(receiver_seen).empty();
  }));
  EXPECT_EQ(target_memory, source_memory);
  EXPECT_EQ(receiver->peer_name().rfind("[::1]:", 0), 0u) << receiver->peer_name();
}

// Destroying one endpoint (the process lives on) is a hang-up for its peer: PeerFailed with
// kClosed naming the peer, exactly once, and the latched status from then on.
TEST(TcpEndpoint, DestroyedEndpointIsAHangUpForItsPeer) {
  auto receiver_ctx = tcp::make_tcp_context({});
  auto sender_ctx = tcp::make_tcp_context({});
  auto listener = receiver_ctx->listen({"127.0.0.1", "", 0});
  auto sender = sender_ctx->connect(listener->address(), std::chrono::seconds(5));
  std::vector<Completion> receiver_seen, sender_seen;
  ASSERT_TRUE(poll_until(*receiver_ctx, receiver_seen,
                         [&] { return !all_of<PeerAccepted>(receiver_seen).empty(); }));
  auto receiver = std::move(all_of<PeerAccepted>(receiver_seen).front()->endpoint);
  receiver.reset();
  ASSERT_TRUE(poll_until(*sender_ctx, sender_seen,
                         [&] { return !all_of<PeerFailed>(sender_seen).empty(); }));
  // Give a second PeerFailed the chance to show up, if there were one.
  ASSERT_TRUE(sender_ctx->poll(sender_seen, milliseconds(50)).is_ok());
  const auto failed = all_of<PeerFailed>(sender_seen);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed.front()->peer, sender.get());
  EXPECT_EQ(failed.front()->status.code(), StatusCode::kClosed);
  EXPECT_EQ(failed.front()->status.message(), "peer " + sender->peer_name() + " hung up");
  EXPECT_EQ(sender->send_control(bytes_of("x")).code(), StatusCode::kClosed);
}

}  // namespace
}  // namespace imgcast::transport::test
