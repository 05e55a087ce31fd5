#include "tests/transport/conformance.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <numeric>

#include "tests/transport/random_bytes.h"
#include "transport/error.h"
#include "transport/tcp/tcp_context.h"
#if IMGCAST_HAVE_UCX
#include "transport/fallback/two_halves.h"
#include "transport/ucx/ucx_context.h"
#endif

namespace imgcast::transport::test {

bool poll_until(Context& context, std::vector<Completion>& seen, const std::function<bool()>& done,
                std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    EXPECT_TRUE(context.poll(seen, std::chrono::milliseconds(10)).is_ok());
  }
  return true;
}

bool poll_both_until(Context& a, std::vector<Completion>& seen_a, Context& b,
                     std::vector<Completion>& seen_b, const std::function<bool()>& done,
                     std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    EXPECT_TRUE(a.poll(seen_a, std::chrono::milliseconds(1)).is_ok());
    EXPECT_TRUE(b.poll(seen_b, std::chrono::milliseconds(1)).is_ok());
  }
  return true;
}

namespace {

// A connected pair: `sender` connects to a listener of `receiver`.
class TransportTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    const Availability availability = probe(GetParam().kind);
    if (!availability.usable) {
      GTEST_SKIP() << GetParam().name << " cannot run here: " << availability.reason;
    }
    make_pair({});
  }

  void make_pair(const ContextOptions& options) {
    // A second pair replaces the first: a context must outlive what it made (context.h), so
    // the old objects go first (the fallback composite's endpoints call back into theirs).
    remote_.reset();
    source_.reset();
    target_.reset();
    sender_.reset();
    receiver_.reset();
    listener_.reset();
    sender_seen_.clear();
    receiver_seen_.clear();
    sender_ctx_ = GetParam().make(options);
    receiver_ctx_ = GetParam().make(options);
    ListenOptions listen;
    listen.bind_host = "127.0.0.1";
    listener_ = receiver_ctx_->listen(listen);
    sender_ = sender_ctx_->connect(listener_->address(), std::chrono::seconds(5));
    // Both sides progress: some backends (UCX) finish connecting only while both poll.
    ASSERT_TRUE(poll_both_until(*sender_ctx_, sender_seen_, *receiver_ctx_, receiver_seen_,
                                [&] { return !all_of<PeerAccepted>(receiver_seen_).empty(); }));
    sender_seen_.clear();
    receiver_ = std::move(all_of<PeerAccepted>(receiver_seen_).front()->endpoint);
    receiver_seen_.clear();
    // The suite is about a proven pair: the handshake that would prove it is the replicator's.
    sender_->trust();
    receiver_->trust();
  }

  // Registers `size` bytes on the receiver for remote writes and imports it on the sender.
  void make_target(std::size_t size) {
    target_memory_.assign(size, std::byte{0});
    target_ = receiver_ctx_->register_memory(target_memory_, Access::kRemoteWrite);
    target_->allow_writer(*receiver_);  // writes come only on granted connections
    const auto wire = target_->descriptor().encode();  // what a peer would get
    remote_ = sender_->import_region(*RegionDescriptor::decode(wire));
  }

  Status write(std::uint64_t source_offset, std::uint64_t target_offset, std::uint32_t length,
               std::uint32_t imm, std::uint64_t cookie) {
    WriteRequest r;
    r.source = source_.get();
    r.source_offset = source_offset;
    r.target = remote_.get();
    r.target_offset = target_offset;
    r.length = length;
    r.imm = imm;
    r.notice = imm * 1000003ULL;
    r.cookie = cookie;
    return sender_->post_write(r);
  }

  std::unique_ptr<Context> sender_ctx_, receiver_ctx_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Endpoint> sender_, receiver_;
  std::vector<Completion> sender_seen_, receiver_seen_;
  std::vector<std::byte> source_memory_, target_memory_;
  std::unique_ptr<MemoryRegion> source_, target_;
  std::unique_ptr<RemoteRegion> remote_;
};

TEST_P(TransportTest, ControlMessagesArriveInOrderBothWays) {
  for (int i = 0; i < 50; ++i) {
    const auto message = random_bytes(1 + i * 37, i);
    ASSERT_TRUE(sender_->send_control(message).is_ok());
  }
  ASSERT_TRUE(receiver_->send_control(random_bytes(10, 99)).is_ok());
  ASSERT_TRUE(poll_both_until(*sender_ctx_, sender_seen_, *receiver_ctx_, receiver_seen_, [&] {
    return all_of<ControlArrived>(receiver_seen_).size() == 50 &&
           all_of<ControlArrived>(sender_seen_).size() == 1;
  }));
  const auto arrived = all_of<ControlArrived>(receiver_seen_);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(arrived[i]->bytes, random_bytes(1 + i * 37, i)) << "message " << i;
    EXPECT_EQ(arrived[i]->from, receiver_.get());
  }
  EXPECT_EQ(all_of<ControlArrived>(sender_seen_).front()->bytes, random_bytes(10, 99));
}

TEST_P(TransportTest, WritesLandAtTheirOffsetsWithImmNoticeAndOneCompletionEach) {
  constexpr std::size_t kChunk = 1 << 20;
  constexpr std::size_t kSize = 8 * kChunk + 123;  // the last chunk is partial
  source_memory_ = random_bytes(kSize, 1);
  source_ = sender_ctx_->register_memory(source_memory_, Access::kLocalRead);
  make_target(kSize);
  const std::uint32_t chunks = (kSize + kChunk - 1) / kChunk;
  for (std::uint32_t i = 0; i < chunks; ++i) {
    const std::uint64_t offset = std::uint64_t{i} * kChunk;
    const auto length = static_cast<std::uint32_t>(std::min<std::uint64_t>(kChunk, kSize - offset));
    ASSERT_TRUE(write(offset, offset, length, i, 100 + i).is_ok());
  }
  // A control message posted after the writes arrives after all of them.
  ASSERT_TRUE(sender_->send_control(random_bytes(5, 5)).is_ok());
  ASSERT_TRUE(poll_both_until(*sender_ctx_, sender_seen_, *receiver_ctx_, receiver_seen_, [&] {
    return all_of<WriteDone>(sender_seen_).size() == chunks &&
           all_of<ControlArrived>(receiver_seen_).size() == 1;
  }));
  EXPECT_EQ(target_memory_, source_memory_);

  const auto done = all_of<WriteDone>(sender_seen_);
  for (std::uint32_t i = 0; i < chunks; ++i) {
    EXPECT_TRUE(done[i]->status.is_ok());
    EXPECT_EQ(done[i]->cookie, 100 + i);
    EXPECT_EQ(done[i]->endpoint, sender_.get());
  }
  std::uint32_t arrived = 0;
  bool control_seen = false;
  for (auto& c : receiver_seen_) {
    if (auto* a = std::get_if<WriteArrived>(&c)) {
      EXPECT_FALSE(control_seen) << "a write arrived after a later control message";
      EXPECT_EQ(a->imm, arrived);
      EXPECT_EQ(a->notice, arrived * 1000003ULL);
      EXPECT_EQ(a->length, arrived + 1 == chunks ? kSize % kChunk : kChunk);
      ++arrived;
    } else if (std::holds_alternative<ControlArrived>(c)) {
      control_seen = true;
    }
  }
  EXPECT_EQ(arrived, chunks);
}

// A waiter blocked on wait_fd() must wake for every completion, including one that became due
// inside post_write (a send that left at once): otherwise a relay with nothing else to do sleeps
// through its own progress.
TEST_P(TransportTest, WaitFdWakesForCompletionsDueAfterPostWrite) {
  source_memory_ = random_bytes(4096, 8);
  source_ = sender_ctx_->register_memory(source_memory_, Access::kLocalRead);
  make_target(4096);
  ASSERT_TRUE(poll_until(*sender_ctx_, sender_seen_, [] { return true; }));  // drain
  ASSERT_TRUE(write(0, 0, 4096, 0, 9).is_ok());
  pollfd waiter{sender_ctx_->wait_fd(), POLLIN, 0};
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(::poll(&waiter, 1, 5000), 1) << "wait_fd never woke after post_write";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  ASSERT_TRUE(poll_both_until(*sender_ctx_, sender_seen_, *receiver_ctx_, receiver_seen_,
                              [&] { return all_of<WriteDone>(sender_seen_).size() == 1; }));
  EXPECT_EQ(all_of<WriteDone>(sender_seen_).front()->cookie, 9u);
}

// Nothing completes inline: post_write and send_control only queue. The completions come from
// poll(), which hands out what is already due without sleeping through its timeout.
TEST_P(TransportTest, CompletionsComeFromPollAndPollDoesNotSleepOnDueWork) {
  source_memory_ = random_bytes(4096, 10);
  source_ = sender_ctx_->register_memory(source_memory_, Access::kLocalRead);
  make_target(4096);
  ASSERT_TRUE(write(0, 0, 4096, 0, 77).is_ok());
  ASSERT_TRUE(sender_->send_control(random_bytes(3, 3)).is_ok());
  EXPECT_TRUE(sender_seen_.empty());
  // One poll with a long timeout returns as soon as there is something, not after 5 s.
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(sender_ctx_->poll(sender_seen_, std::chrono::seconds(5)).is_ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  ASSERT_TRUE(poll_both_until(*sender_ctx_, sender_seen_, *receiver_ctx_, receiver_seen_, [&] {
    return all_of<WriteDone>(sender_seen_).size() == 1 &&
           all_of<ControlArrived>(receiver_seen_).size() == 1;
  }));
  EXPECT_EQ(all_of<WriteDone>(sender_seen_).front()->cookie, 77u);
  // Exactly one: nothing more turns up later.
  ASSERT_TRUE(sender_ctx_->poll(sender_seen_, std::chrono::milliseconds(50)).is_ok());
  EXPECT_EQ(all_of<WriteDone>(sender_seen_).size(), 1u);
}

// An endpoint destroyed with completions not yet handed out takes them along: no later poll may
// return a pointer to it.
TEST_P(TransportTest, DestroyedEndpointLeavesNoCompletionsBehind) {
  source_memory_ = random_bytes(1 << 20, 11);
  source_ = sender_ctx_->register_memory(source_memory_, Access::kLocalRead);
  make_target(1 << 20);
  for (std::uint32_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(write(i * (256 << 10), i * (256 << 10), 256 << 10, i, i).is_ok());
  }
  ASSERT_TRUE(sender_->send_control(random_bytes(3, 3)).is_ok());
  const Endpoint* gone = sender_.get();
  remote_.reset();
  sender_.reset();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(sender_ctx_->poll(sender_seen_, std::chrono::milliseconds(10)).is_ok());
    ASSERT_TRUE(receiver_ctx_->poll(receiver_seen_, std::chrono::milliseconds(10)).is_ok());
  }
  for (auto* done : all_of<WriteDone>(sender_seen_))
    EXPECT_NE(done->endpoint, gone);
  for (auto* failed : all_of<PeerFailed>(sender_seen_))
    EXPECT_NE(failed->peer, gone);
  EXPECT_TRUE(all_of<ControlArrived>(sender_seen_).empty());
}

TEST_P(TransportTest, PostWriteChecksBothRangesWithoutOverflow) {
  source_memory_ = random_bytes(4096, 2);
  source_ = sender_ctx_->register_memory(source_memory_, Access::kLocalRead);
  make_target(8192);
  EXPECT_EQ(write(0, 8192, 1, 0, 0).code(), StatusCode::kOutOfRange);          // past the target
  EXPECT_EQ(write(0, 8000, 200, 0, 0).code(), StatusCode::kOutOfRange);        // straddles the end
  EXPECT_EQ(write(4000, 0, 100, 0, 0).code(), StatusCode::kOutOfRange);        // past the source
  EXPECT_EQ(write(0, ~0ULL - 10, 100, 0, 0).code(), StatusCode::kOutOfRange);  // would wrap
  EXPECT_EQ(write(~0ULL, 0, 100, 0, 0).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(write(0, 0, 0, 0, 0).code(), StatusCode::kInvalidArgument);  // empty
  // A source not registered for reading is refused.
  auto write_only = sender_ctx_->register_memory(source_memory_, Access::kRemoteWrite);
  WriteRequest r{write_only.get(), 0, remote_.get(), 0, 10, 0, 0, 0};
  EXPECT_EQ(sender_->post_write(r).code(), StatusCode::kInvalidArgument);
  // Nothing was accepted, so nothing completes.
  EXPECT_TRUE(sender_ctx_->poll(sender_seen_, std::chrono::milliseconds(50)).is_ok());
  EXPECT_TRUE(all_of<WriteDone>(sender_seen_).empty());
  EXPECT_EQ(write(4095, 8191, 1, 0, 0).code(), StatusCode::kOk);  // the last byte is fine
}

TEST_P(TransportTest, FullQueueAnswersBusyAndDrainsLater) {
  ContextOptions small;
  small.max_writes_in_flight = 2;
  make_pair(small);
  constexpr std::size_t kBig = 32 << 20;  // more than any socket buffer holds
  source_memory_ = random_bytes(kBig, 3);
  source_ = sender_ctx_->register_memory(source_memory_, Access::kLocalRead);
  make_target(kBig);
  ASSERT_TRUE(write(0, 0, kBig / 2, 0, 1).is_ok());
  ASSERT_TRUE(write(kBig / 2, kBig / 2, kBig / 2, 1, 2).is_ok());
  EXPECT_EQ(write(0, 0, 1, 2, 3).code(), StatusCode::kBusy);
  ASSERT_TRUE(poll_both_until(*sender_ctx_, sender_seen_, *receiver_ctx_, receiver_seen_,
                              [&] { return all_of<WriteDone>(sender_seen_).size() == 2; }));
  EXPECT_EQ(target_memory_, source_memory_);
  EXPECT_TRUE(write(0, 0, 1, 2, 3).is_ok());
}

TEST_P(TransportTest, PeerGoneFailsEveryPendingWriteOnceAndReportsIt) {
  constexpr std::size_t kBig = 32 << 20;
  source_memory_ = random_bytes(kBig, 4);
  source_ = sender_ctx_->register_memory(source_memory_, Access::kLocalRead);
  make_target(kBig);
  constexpr int kWrites = 4;
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_TRUE(write(i * (kBig / kWrites), i * (kBig / kWrites), kBig / kWrites, i, i).is_ok());
  }
  // The peer disappears with data unread: its endpoint, region and whole context go, as when
  // its process dies (some backends, UCX, keep a connection per context, not per endpoint).
  receiver_.reset();
  target_.reset();
  listener_.reset();
  receiver_ctx_.reset();
  ASSERT_TRUE(poll_until(*sender_ctx_, sender_seen_, [&] {
    return all_of<WriteDone>(sender_seen_).size() == kWrites &&
           !all_of<PeerFailed>(sender_seen_).empty();
  }));
  int failed = 0;
  for (auto* done : all_of<WriteDone>(sender_seen_)) {
    failed += !done->status.is_ok();
  }
  EXPECT_GT(failed, 0);
  EXPECT_EQ(all_of<PeerFailed>(sender_seen_).size(), 1u);
  // The failure is latched.
  EXPECT_FALSE(write(0, 0, 1, 0, 0).is_ok());
  EXPECT_FALSE(sender_->send_control(random_bytes(1, 1)).is_ok());
}

TEST_P(TransportTest, OffsetsBeyondFourGibibytes) {
  constexpr std::size_t kRegion = (5ULL << 30);
  void* memory = ::mmap(nullptr, kRegion, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  auto* bytes = static_cast<std::byte*>(memory);
  target_ = receiver_ctx_->register_memory({bytes, kRegion}, Access::kRemoteWrite);
  target_->allow_writer(*receiver_);
  remote_ = sender_->import_region(target_->descriptor());
  source_memory_ = random_bytes(1 << 20, 6);
  source_ = sender_ctx_->register_memory(source_memory_, Access::kLocalRead);
  const std::uint64_t offset = (4ULL << 30) + (512ULL << 20) + 3;
  ASSERT_TRUE(write(0, offset, 1 << 20, 0, 0).is_ok());
  ASSERT_TRUE(poll_both_until(*sender_ctx_, sender_seen_, *receiver_ctx_, receiver_seen_,
                              [&] { return all_of<WriteArrived>(receiver_seen_).size() == 1; }));
  EXPECT_TRUE(std::equal(source_memory_.begin(), source_memory_.end(), bytes + offset));
  target_.reset();
  ::munmap(memory, kRegion);
}

TEST_P(TransportTest, ImportRejectsADescriptorOfAnotherBackend) {
  RegionDescriptor foreign;
  foreign.kind = GetParam().kind == Kind::kTcp ? Kind::kVerbs : Kind::kTcp;
  foreign.length = 100;
  foreign.key.assign(3, std::byte{1});
  EXPECT_THROW(sender_->import_region(foreign), Error);
}

TEST_P(TransportTest, ConnectToNobodyFailsNamingTheAddress) {
  auto listener = receiver_ctx_->listen({"127.0.0.1", "", 0});
  const std::vector<std::byte> address(listener->address().begin(), listener->address().end());
  const std::string name =
      GetParam().address_name
          ? GetParam().address_name(address)
          : std::string(reinterpret_cast<const char*>(address.data()), address.size());
  listener.reset();  // now nobody listens there
  // Either connect throws, or (a background-connecting backend) the endpoint fails soon after.
  try {
    auto endpoint = sender_ctx_->connect(address, std::chrono::milliseconds(300));
    std::vector<Completion> seen;
    ASSERT_TRUE(poll_until(*sender_ctx_, seen, [&] { return !all_of<PeerFailed>(seen).empty(); }))
        << "connecting to a closed port neither threw nor failed";
    const auto failed = all_of<PeerFailed>(seen);
    EXPECT_EQ(failed.front()->peer, endpoint.get());
    EXPECT_NE(failed.front()->status.message().find(name), std::string::npos)
        << failed.front()->status.message();
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(name), std::string::npos) << error.what();
  }
}

// A real second process receives 64 MiB and checks every byte.
TEST_P(TransportTest, TwoProcessesMoveSixtyFourMebibytes) {
  if (GetParam().kind == Kind::kUcx) {
    GTEST_SKIP() << "UCX cannot be used in a child forked after the parent initialised it; the "
                    "end-to-end tests run UCX in separately started processes instead";
  }
  if (GetParam().kind == Kind::kVerbs) {
    // librdmacm keeps one process-wide list of opened devices; a forked child would inherit the
    // parent's (its uverbs fds and cached contexts), not open its own.
    GTEST_SKIP() << "verbs cannot be used in a child forked after the parent opened the device; "
                    "between processes it runs as imgcast replicate --transport verbs "
                    "(perf/ib_bench.sh)";
  }
  constexpr std::size_t kSize = 64 << 20;
  constexpr std::uint32_t kChunk = 1 << 20;
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Receiver: listen, publish the address, receive every chunk, compare, exit 0 on success.
    auto context = GetParam().make({});
    auto listener = context->listen({"127.0.0.1", "", 0});
    std::vector<std::byte> memory(kSize);
    auto region = context->register_memory(memory, Access::kRemoteWrite);
    const auto descriptor = region->descriptor().encode();
    std::vector<std::byte> announce(listener->address().begin(), listener->address().end());
    const std::uint32_t length = static_cast<std::uint32_t>(announce.size());
    (void)!::write(ready[1], &length, sizeof length);
    (void)!::write(ready[1], announce.data(), announce.size());
    const std::uint32_t dlen = static_cast<std::uint32_t>(descriptor.size());
    (void)!::write(ready[1], &dlen, sizeof dlen);
    (void)!::write(ready[1], descriptor.data(), descriptor.size());
    std::vector<Completion> seen;
    std::unique_ptr<Endpoint> peer;
    std::size_t arrived = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (arrived < kSize / kChunk && std::chrono::steady_clock::now() < deadline) {
      seen.clear();
      if (!context->poll(seen, std::chrono::milliseconds(100)).is_ok())
        ::_exit(3);
      for (auto& c : seen) {
        if (auto* a = std::get_if<PeerAccepted>(&c)) {
          peer = std::move(a->endpoint);
          region->allow_writer(*peer);  // before the next poll reads its first write
        }
        if (std::holds_alternative<WriteArrived>(c))
          ++arrived;
        if (std::holds_alternative<PeerFailed>(c))
          ::_exit(4);
      }
    }
    ::_exit(arrived == kSize / kChunk && memory == random_bytes(kSize, 7) ? 0 : 5);
  }
  ::close(ready[1]);
  std::uint32_t length = 0;
  ASSERT_EQ(::read(ready[0], &length, sizeof length), static_cast<ssize_t>(sizeof length));
  std::vector<std::byte> address(length);
  ASSERT_EQ(::read(ready[0], address.data(), length), static_cast<ssize_t>(length));
  std::uint32_t dlen = 0;
  ASSERT_EQ(::read(ready[0], &dlen, sizeof dlen), static_cast<ssize_t>(sizeof dlen));
  std::vector<std::byte> descriptor(dlen);
  ASSERT_EQ(::read(ready[0], descriptor.data(), dlen), static_cast<ssize_t>(dlen));
  ::close(ready[0]);

  sender_ = sender_ctx_->connect(address, std::chrono::seconds(5));
  remote_ = sender_->import_region(*RegionDescriptor::decode(descriptor));
  source_memory_ = random_bytes(kSize, 7);
  source_ = sender_ctx_->register_memory(source_memory_, Access::kLocalRead);
  std::uint32_t posted = 0;
  std::size_t done = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (done < kSize / kChunk && std::chrono::steady_clock::now() < deadline) {
    while (posted < kSize / kChunk) {
      const Status s = write(std::uint64_t{posted} * kChunk, std::uint64_t{posted} * kChunk, kChunk,
                             posted, posted);
      if (s.code() == StatusCode::kBusy)
        break;
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      ++posted;
    }
    sender_seen_.clear();
    ASSERT_TRUE(sender_ctx_->poll(sender_seen_, std::chrono::milliseconds(100)).is_ok());
    for (auto* d : all_of<WriteDone>(sender_seen_)) {
      ASSERT_TRUE(d->status.is_ok());
      ++done;
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "receiver status " << status;
}

// Every backend built into this binary runs the same suite.
std::vector<Backend> backends() {
  std::vector<Backend> out = {
      {"tcp", Kind::kTcp, [](const ContextOptions& o) { return tcp::make_tcp_context(o); }, nullptr}};
#if IMGCAST_HAVE_UCX
  out.push_back(
      {"ucx", Kind::kUcx, [](const ContextOptions& o) { return ucx::make_ucx_context(o); }, nullptr});
  // --transport auto's composite over UCX and TCP (transport/fallback): the same contracts.
  // A refused connect falls back and fails naming the TCP half of the address.
  out.push_back({"auto_ucx", Kind::kUcx,
                 [](ContextOptions o) {
                   o.tcp_fallback = true;
                   return make_context(Kind::kUcx, o);
                 },
                 [](std::span<const std::byte> address) {
                   const auto tcp = fallback::unpack(address)->tcp;
                   return std::string(reinterpret_cast<const char*>(tcp.data()), tcp.size());
                 }});
#endif
  // Always instantiated: where the backend is not built in, or no RDMA device is there, each
  // test skips with the probe's reason.
  out.push_back({"verbs", Kind::kVerbs,
                 [](const ContextOptions& o) { return make_context(Kind::kVerbs, o); }, nullptr});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Backends, TransportTest, ::testing::ValuesIn(backends()), backend_name);

}  // namespace
}  // namespace imgcast::transport::test
