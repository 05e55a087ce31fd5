// TcpEndpoint: one connected TCP peer. One-sided writes are emulated: a write becomes a header
// plus the payload, sent with one writev straight from the source region; the receiver checks
// the header and recv()s the payload straight into the target region at its offset. Non-blocking
// socket in the context's epoll set (level-triggered); EPOLLOUT is armed only while a send is
// pending. No allocation or copy per write: the send queue is a ring allocated once.
#pragma once

#include <sys/uio.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "transport/endpoint.h"
#include "transport/tcp/frame_header.h"
#include "transport/tcp/tcp_core.h"

namespace imgcast::transport::tcp {

class TcpEndpoint final : public Endpoint, public EpollHandler {
 public:
  // Takes a connected non-blocking socket and adds it to the epoll set. Throws Error.
  TcpEndpoint(std::shared_ptr<TcpCore> core, UniqueFd socket, std::string peer_name);
  ~TcpEndpoint() override;

  std::unique_ptr<RemoteRegion> import_region(const RegionDescriptor& descriptor) override;
  const std::string& peer_name() const noexcept override { return peer_name_; }
  Kind kind() const noexcept override { return Kind::kTcp; }
  void on_events(std::uint32_t events) override;

 private:
  // One frame waiting to leave: its header, then `payload_length` bytes at `payload`.
  struct Outgoing {
    std::array<std::byte, FrameHeader::kBytes> header{};
    const std::byte* payload = nullptr;
    std::uint32_t payload_length = 0;
    std::uint64_t sent = 0;  // bytes of header + payload already handed to the kernel
    std::uint64_t cookie = 0;
    bool is_write = false;
    std::vector<std::byte> control;  // owns a control message's bytes
  };
  enum class ReceiveStep { kHeader, kPayload, kControl };

  Status do_post_write(const WriteRequest& request) override;
  Status do_send_control(std::span<const std::byte> message) override;
  Status enqueue(Outgoing&& frame);
  void flush();
  void receive();
  void set_low_water(std::uint64_t want);
  bool start_frame();  // header complete: check it and set up the payload
  void set_want_write(bool want);
  Status socket_error(const char* what, int error) const;
  // Latches `status` (first failure only), leaves the epoll set, completes every queued write
  // with it and reports PeerFailed once.
  void fail(Status status);
  // What the current frame still needs: the rest of its header, or of the payload it announced.
  std::uint64_t bytes_sure_to_come() const noexcept;
  // Moves up to `want` bytes of the current payload from the socket into `file` at `offset`,
  // through pipe_: the socket's pages go into the pipe and the file's write path copies them
  // out, one copy as with recvmsg, but into pages the write allocates without zeroing and no
  // page table maps. Returns the bytes landed, 0 when the socket has none queued, -1 after
  // fail().
  std::int64_t splice_payload(int file, std::uint64_t offset, std::uint64_t want);

  std::shared_ptr<TcpCore> core_;
  UniqueFd socket_;
  std::string peer_name_;
  Status failure_;  // latched first failure

  // Send ring: fixed capacity (writes in flight + room for control messages).
  std::vector<Outgoing> ring_;
  std::size_t head_ = 0;
  std::size_t queued_ = 0;
  std::size_t writes_queued_ = 0;
  bool want_write_ = false;

  // Receive state.
  ReceiveStep step_ = ReceiveStep::kHeader;
  // SO_RCVLOWAT: the socket wakes the poller only when this many bytes are queued. Set to what
  // the current frame still needs (up to kMaxLowWater), so a chunk trickling in over a slow link
  // costs one wake-up and one recvmsg, not one per packet or two.
  int low_water_ = 1;
  static constexpr std::uint64_t kMaxLowWater = 256 * 1024;
  std::array<std::byte, FrameHeader::kBytes> header_buf_{};
  std::size_t header_got_ = 0;
  FrameHeader frame_{};
  std::uint64_t payload_got_ = 0;
  std::vector<std::byte> control_buf_;
  // For payloads into a region with a file (RegisteredRegion::file), made at the first one.
  UniqueFd pipe_read_;
  UniqueFd pipe_write_;
  static constexpr int kPipeBytes = 1 << 20;  // a chunk in one pass (pipe-max-size's default)
};

}  // namespace imgcast::transport::tcp
