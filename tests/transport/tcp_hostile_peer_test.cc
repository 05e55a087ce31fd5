// The TCP receive path against a hostile peer speaking raw bytes: wrong key, writes out of
// range, malformed headers. Each must fail that connection with the right status and leave the
// region untouched. Every case runs twice: into plain memory (recvmsg) and into a region whose
// writes land through its file (Context::register_memory's file: spliced from the socket).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "tests/transport/conformance.h"
#include "transport/byte_order.h"
#include "transport/tcp/frame_header.h"
#include "transport/tcp/tcp_context.h"
#include "transport/unique_fd.h"

namespace imgcast::transport::test {
namespace {

// GetParam(): the region's writes land through its file (a memfd the memory maps).
class HostilePeer : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    context_ = tcp::make_tcp_context(options_, tcp_options_);
    listener_ = context_->listen({"127.0.0.1", "", 0});
    constexpr std::size_t kBytes = 1 << 20;
    if (GetParam()) {
      file_ = UniqueFd(::memfd_create("hostile-peer-region", MFD_CLOEXEC));
      ASSERT_TRUE(file_.valid());
      map_region_file(kBytes);
    } else {
      storage_.assign(kBytes, std::byte{0});
      memory_ = storage_;
    }
    region_ = context_->register_memory(memory_, Access::kRemoteWrite, file_.get());
    key_ = load_le64(region_->descriptor().key.data());

    const std::string name = listener_->name();
    std::uint16_t port = 0;
    const auto colon = name.rfind(':');
    std::from_chars(name.data() + colon + 1, name.data() + name.size(), port);
    socket_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(socket_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    // The raw peer's connection is the one the region is granted to: the checks below are the
    // ones a granted writer still faces (a stranger's connection: tcp_write_authority_test.cc).
    std::vector<Completion> seen;
    ASSERT_TRUE(poll_until(*context_, seen, [&] {
      keep_accepted(seen, accepted_);
      return accepted_ != nullptr;
    }));
    region_->allow_writer(*accepted_);
  }
  void TearDown() override {
    ::close(socket_);
    region_.reset();
    if (mapped_)
      ::munmap(memory_.data(), memory_.size());
  }
  // memory_ becomes a shared mapping of file_, sized to `bytes` (sparse: nothing allocated).
  void map_region_file(std::size_t bytes) {
    ASSERT_EQ(::ftruncate(file_.get(), static_cast<off_t>(bytes)), 0);
    void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, file_.get(), 0);
    ASSERT_NE(map, MAP_FAILED);
    memory_ = {static_cast<std::byte*>(map), bytes};
    mapped_ = true;
  }

  // A header's wire bytes, for sending raw or splicing into a stream.
  static std::array<std::byte, tcp::FrameHeader::kBytes> encoded(const tcp::FrameHeader& header) {
    std::array<std::byte, tcp::FrameHeader::kBytes> bytes{};
    header.encode(bytes);
    return bytes;
  }

  // Sends a header (and `payload` bytes of 0xAB), then returns the status the receiver failed
  // the connection with.
  Status send_and_get_failure(const tcp::FrameHeader& header, std::size_t payload = 0) {
    return send_raw_and_get_failure(encoded(header), payload);
  }
  Status send_raw_and_get_failure(std::span<const std::byte> bytes, std::size_t payload) {
    EXPECT_EQ(::send(socket_, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    std::vector<char> junk(payload, static_cast<char>(0xAB));
    if (payload > 0)
      (void)!::send(socket_, junk.data(), junk.size(), MSG_NOSIGNAL);
    std::vector<Completion> seen;
    std::unique_ptr<Endpoint>& peer = accepted_;
    EXPECT_TRUE(poll_until(*context_, seen, [&] {
      keep_accepted(seen, peer);
      return !all_of<PeerFailed>(seen).empty();
    }));
    EXPECT_TRUE(all_of<WriteArrived>(seen).empty());
    const auto failed = all_of<PeerFailed>(seen);
    if (failed.empty())
      return Status::ok();
    // Every refusal names who was refused.
    EXPECT_TRUE(peer != nullptr);
    if (peer != nullptr) {
      EXPECT_NE(failed.front()->status.message().find(peer->peer_name()), std::string::npos)
          << failed.front()->status.message();
    }
    return failed.front()->status;
  }
  // Takes the endpoint each PeerAccepted hands over: held, the connection stays open, and the
  // test can name the peer its refusal must name.
  static void keep_accepted(std::vector<Completion>& seen, std::unique_ptr<Endpoint>& peer) {
    for (auto* a : all_of<PeerAccepted>(seen)) {
      if (a->endpoint)
        peer = std::move(a->endpoint);
    }
  }
  bool untouched() const {
    return std::all_of(memory_.begin(), memory_.end(),
                       [](std::byte b) { return b == std::byte{0}; });
  }

  tcp::FrameHeader write_header() const {
    tcp::FrameHeader h;
    h.type = tcp::FrameType::kWrite;
    h.region_id = region_->descriptor().region_id;
    h.write_key = key_;
    h.offset = 0;
    h.length = 4096;
    return h;
  }

  // A derived fixture may change them before SetUp.
  ContextOptions options_;
  tcp::TcpOptions tcp_options_;
  std::unique_ptr<Context> context_;
  std::unique_ptr<Listener> listener_;
  std::vector<std::byte> storage_;  // the region's memory, or
  UniqueFd file_;                   // the file it maps (GetParam())
  bool mapped_ = false;
  std::span<std::byte> memory_;
  std::unique_ptr<MemoryRegion> region_;
  std::uint64_t key_ = 0;
  int socket_ = -1;
  std::unique_ptr<Endpoint> accepted_;  // the receiver's end of socket_
};

TEST_P(HostilePeer, WrongKeyIsRefused) {
  auto h = write_header();
  h.write_key ^= 1;
  EXPECT_EQ(send_and_get_failure(h, 4096).code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(untouched());
}

TEST_P(HostilePeer, UnknownRegionIsRefused) {
  auto h = write_header();
  h.region_id += 100;
  EXPECT_EQ(send_and_get_failure(h, 4096).code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(untouched());
}

TEST_P(HostilePeer, WriteOutOfRangeIsRefused) {
  auto h = write_header();
  h.offset = memory_.size() - 100;
  EXPECT_EQ(send_and_get_failure(h, 4096).code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(untouched());
}

TEST_P(HostilePeer, WrappingOffsetIsRefused) {
  auto h = write_header();
  h.offset = ~0ULL - 10;
  EXPECT_EQ(send_and_get_failure(h, 4096).code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(untouched());
}

TEST_P(HostilePeer, MalformedHeaderIsRefused) {
  std::array<std::byte, tcp::FrameHeader::kBytes> garbage;
  garbage.fill(std::byte{0x41});
  EXPECT_EQ(send_raw_and_get_failure(garbage, 0).code(), StatusCode::kProtocolError);
  EXPECT_TRUE(untouched());
}

TEST_P(HostilePeer, RegionNotOpenForRemoteWritesIsRefused) {
  std::vector<std::byte> local(4096);
  auto read_only = context_->register_memory(local, Access::kLocalRead);
  auto h = write_header();
  h.region_id = read_only->descriptor().region_id;
  h.write_key = load_le64(read_only->descriptor().key.data());
  EXPECT_EQ(send_and_get_failure(h, 4096).code(), StatusCode::kPermissionDenied);
}

TEST_P(HostilePeer, OversizedControlMessageIsRefusedBeforeAllocating) {
  accepted_->trust();  // even a proven peer stays within the API's bound
  tcp::FrameHeader h;
  h.type = tcp::FrameType::kControl;
  h.length = Endpoint::kMaxControlBytes + 1;
  EXPECT_EQ(send_and_get_failure(h).code(), StatusCode::kProtocolError);
}

// Before authentication, a 48-byte header announcing 1 MiB must not make the receiver allocate
// it: anything over the small bound fails the connection at the header.
TEST_P(HostilePeer, UntrustedPeerCannotAnnounceABigControlMessage) {
  tcp::FrameHeader h;
  h.type = tcp::FrameType::kControl;
  h.length = Endpoint::kMaxControlBytes;
  const Status status = send_and_get_failure(h);
  EXPECT_EQ(status.code(), StatusCode::kProtocolError);
  EXPECT_NE(status.message().find("before authentication"), std::string::npos) << status.message();
}

TEST_P(HostilePeer, HangingUpInsideAFrameIsClosedAndNamesThePeer) {
  const auto bytes = encoded(write_header());
  ASSERT_EQ(::send(socket_, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  std::vector<char> half(2048, static_cast<char>(0xAB));
  ASSERT_EQ(::send(socket_, half.data(), half.size(), 0), 2048);
  ::shutdown(socket_, SHUT_WR);
  std::vector<Completion> seen;
  std::unique_ptr<Endpoint>& peer = accepted_;
  ASSERT_TRUE(poll_until(*context_, seen, [&] {
    keep_accepted(seen, peer);
    return !all_of<PeerFailed>(seen).empty();
  }));
  EXPECT_TRUE(all_of<WriteArrived>(seen).empty());  // half a chunk is no chunk
  const Status& status = all_of<PeerFailed>(seen).front()->status;
  EXPECT_EQ(status.code(), StatusCode::kClosed);
  EXPECT_NE(status.message().find(peer->peer_name()), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("middle of a frame"), std::string::npos) << status.message();
}

// Header and payload trickle in, split at awkward places (inside the header, at its end, inside
// the payload, together with the next header): the receiver resumes where it stopped.
TEST_P(HostilePeer, FramesSplitAnywhereAreReassembled) {
  std::vector<std::byte> stream;
  for (std::uint32_t i = 0; i < 3; ++i) {
    auto h = write_header();
    h.offset = i * 4096;
    h.imm = i;
    h.notice = 100 + i;
    const auto bytes = encoded(h);
    stream.insert(stream.end(), bytes.begin(), bytes.end());
    stream.insert(stream.end(), 4096, static_cast<std::byte>(0x10 + i));
  }
  std::vector<Completion> seen;
  std::unique_ptr<Endpoint>& peer = accepted_;
  std::size_t sent = 0;
  constexpr std::size_t kFrame = tcp::FrameHeader::kBytes + 4096;
  for (std::size_t cut : {std::size_t{7}, std::size_t{48}, std::size_t{1000}, kFrame + 20,
                          2 * kFrame + 48, stream.size()}) {
    ASSERT_GT(cut, sent);
    ASSERT_EQ(::send(socket_, stream.data() + sent, cut - sent, 0),
              static_cast<ssize_t>(cut - sent));
    sent = cut;
    // Let the receiver consume this piece before the next one arrives.
    ASSERT_TRUE(context_->poll(seen, std::chrono::milliseconds(20)).is_ok());
    keep_accepted(seen, peer);
  }
  ASSERT_TRUE(poll_until(*context_, seen, [&] { return all_of<WriteArrived>(seen).size() == 3; }));
  EXPECT_TRUE(all_of<PeerFailed>(seen).empty());
  const auto arrived = all_of<WriteArrived>(seen);
  for (std::uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(arrived[i]->imm, i);
    EXPECT_EQ(arrived[i]->notice, 100 + i);
    EXPECT_EQ(arrived[i]->length, 4096u);
    EXPECT_EQ(memory_[i * 4096], static_cast<std::byte>(0x10 + i));
    EXPECT_EQ(memory_[i * 4096 + 4095], static_cast<std::byte>(0x10 + i));
  }
  EXPECT_EQ(memory_[3 * 4096], std::byte{0});
}

TEST_P(HostilePeer, ValidWriteFromARawPeerLands) {
  // The same raw path, with the right key, lands: the refusals above are about the checks.
  const auto bytes = encoded(write_header());
  ASSERT_EQ(::send(socket_, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  std::vector<char> payload(4096, static_cast<char>(0xAB));
  ASSERT_EQ(::send(socket_, payload.data(), payload.size(), 0), 4096);
  std::vector<Completion> seen;
  std::unique_ptr<Endpoint>& peer = accepted_;
  ASSERT_TRUE(poll_until(*context_, seen, [&] {
    keep_accepted(seen, peer);
    return !all_of<WriteArrived>(seen).empty();
  }));
  EXPECT_EQ(memory_[0], std::byte{0xAB});
  EXPECT_EQ(memory_[4095], std::byte{0xAB});
  EXPECT_EQ(memory_[4096], std::byte{0});
}

// A receive budget a test can run out of: 4 KiB per wake-up instead of 8 MiB.
class SmallReceiveBudget : public HostilePeer {
 protected:
  SmallReceiveBudget() { tcp_options_.receive_budget = 4096; }
};

TEST_P(SmallReceiveBudget, ASmallFrameQueuedBehindTheBudgetStillWakesTheReceiver) {
  // The hang CI once hit (a 4-node hook job, 8 MiB + 3 bytes in 512 KiB chunks, the last chunk
  // never landing): a wake-up spends its budget exactly on a large frame and the next header,
  // and only the small last frame is left queued. The receive mark must then be what that frame
  // needs, not the large payload's rest asked for earlier, or epoll never reports it.
  constexpr std::size_t kLarge = 64 * 1024;
  constexpr std::size_t kFirstPiece = 1000;
  auto large = write_header();
  large.length = kLarge;
  large.imm = 1;
  auto small = write_header();
  small.offset = kLarge;
  small.length = 3;
  small.imm = 2;
  const auto large_header = encoded(large);
  std::vector<std::byte> first(large_header.begin(), large_header.end());
  first.insert(first.end(), kFirstPiece, std::byte{0x11});
  std::vector<std::byte> rest(kLarge - kFirstPiece, std::byte{0x11});
  const auto small_header = encoded(small);
  rest.insert(rest.end(), small_header.begin(), small_header.end());
  rest.insert(rest.end(), 3, std::byte{0x22});

  // The header and a first piece of the large payload: the receiver takes them and, finding
  // no more, asks the socket to wake it only once the rest of that payload is there.
  ASSERT_EQ(::send(socket_, first.data(), first.size(), 0), static_cast<ssize_t>(first.size()));
  std::vector<Completion> seen;
  std::unique_ptr<Endpoint>& peer = accepted_;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(context_->poll(seen, std::chrono::milliseconds(20)).is_ok());
    keep_accepted(seen, peer);
  }
  ASSERT_NE(peer, nullptr);
  // The rest and the whole small frame at once: one wake-up reads the large frame's rest and
  // the small header (more than the budget), and the 3 bytes wait in the socket.
  ASSERT_EQ(::send(socket_, rest.data(), rest.size(), 0), static_cast<ssize_t>(rest.size()));
  ASSERT_TRUE(poll_until(
      *context_, seen, [&] { return all_of<WriteArrived>(seen).size() == 2; },
      std::chrono::seconds(3)))
      << "the 3-byte frame behind the budget never woke the receiver";
  EXPECT_TRUE(all_of<PeerFailed>(seen).empty());
  EXPECT_EQ(memory_[kLarge - 1], std::byte{0x11});
  EXPECT_EQ(memory_[kLarge], std::byte{0x22});
  EXPECT_EQ(memory_[kLarge + 2], std::byte{0x22});
  EXPECT_EQ(memory_[kLarge + 3], std::byte{0});
}

// A region's file on a file system that fills up under the write: the connection fails with
// kNoSpace (the receiver's own trouble, which its owner must not take for a bad peer).
class FullRegionFile : public HostilePeer {
 protected:
  void SetUp() override {
    mount_dir_ = std::filesystem::temp_directory_path() /
                 ("imgcast-full-region-" + std::to_string(::getpid()));
    std::filesystem::create_directories(mount_dir_);
    if (::mount("tmpfs", mount_dir_.c_str(), "tmpfs", 0, "size=64k") != 0)
      GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << std::strerror(errno);
    mounted_ = true;
    HostilePeer::SetUp();
    // The region's file moves onto the 64 KiB tmpfs, 1 MiB long and sparse.
    region_.reset();
    ::munmap(memory_.data(), memory_.size());
    file_ = UniqueFd(::open((mount_dir_ / "region").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_TRUE(file_.valid());
    map_region_file(1 << 20);
    region_ = context_->register_memory(memory_, Access::kRemoteWrite, file_.get());
    key_ = load_le64(region_->descriptor().key.data());
    region_->allow_writer(*accepted_);
  }
  void TearDown() override {
    if (!mounted_)
      return;
    HostilePeer::TearDown();
    file_ = UniqueFd();
    ::umount2(mount_dir_.c_str(), MNT_DETACH);
    std::filesystem::remove(mount_dir_);
  }
  std::filesystem::path mount_dir_;
  bool mounted_ = false;
};

TEST_P(FullRegionFile, AWriteTheFileSystemCannotHoldFailsWithNoSpace) {
  auto header = write_header();
  header.length = 256 * 1024;  // four times what the tmpfs holds
  const Status status = send_and_get_failure(header, header.length);
  EXPECT_EQ(status.code(), StatusCode::kNoSpace) << status.to_string();
  EXPECT_NE(status.message().find("No space left"), std::string::npos) << status.message();
}

INSTANTIATE_TEST_SUITE_P(IntoMemoryAndThroughAFile, HostilePeer, ::testing::Bool());
INSTANTIATE_TEST_SUITE_P(IntoMemoryAndThroughAFile, SmallReceiveBudget, ::testing::Bool());
INSTANTIATE_TEST_SUITE_P(ThroughAFile, FullRegionFile, ::testing::Values(true));

}  // namespace
}  // namespace imgcast::transport::test
