#include "transport/tcp/tcp_endpoint.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "transport/byte_order.h"
#include "transport/error.h"
#include "transport/log.h"
#include "transport/tcp/socket_options.h"
#include "transport/tcp/tcp_memory_region.h"

namespace imgcast::transport::tcp {

namespace {
// Room for control messages beside the writes in flight; the ring grows (rarely) past it.
constexpr std::size_t kControlSlots = 16;
// Frames gathered into one writev.
constexpr int kMaxFramesPerSend = 16;
}  // namespace

TcpEndpoint::TcpEndpoint(std::shared_ptr<TcpCore> core, UniqueFd socket, std::string peer_name)
    : core_(std::move(core)),
      socket_(std::move(socket)),
      peer_name_(std::move(peer_name)),
      ring_(core_->options.max_writes_in_flight + kControlSlots) {
  tune_socket(socket_.get(), core_->options);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.ptr = static_cast<EpollHandler*>(this);
  if (::epoll_ctl(core_->epoll.get(), EPOLL_CTL_ADD, socket_.get(), &event) != 0) {
    throw Error(StatusCode::kIoError, fmt::format("cannot watch the connection to {}: {}",
                                                  peer_name_, std::strerror(errno)));
  }
}

TcpEndpoint::~TcpEndpoint() {
  if (socket_.valid()) {
    ::epoll_ctl(core_->epoll.get(), EPOLL_CTL_DEL, socket_.get(), nullptr);
  }
  core_->queue.forget(this);
}

std::unique_ptr<RemoteRegion> TcpEndpoint::import_region(const RegionDescriptor& descriptor) {
  if (descriptor.kind != Kind::kTcp || descriptor.key.size() != 8) {
    throw Error(StatusCode::kInvalidArgument,
                fmt::format("{} sent a region descriptor the TCP transport cannot use ({} with a "
                            "{}-byte key)",
                            peer_name_, to_string(descriptor.kind), descriptor.key.size()));
  }
  return std::make_unique<TcpRemoteRegion>(descriptor, load_le64(descriptor.key.data()));
}

Status TcpEndpoint::do_post_write(const WriteRequest& request) {
  IMGCAST_RETURN_IF_ERROR(failure_);  // latched: every later call returns it
  if (writes_queued_ >= core_->options.max_writes_in_flight) {
    return {StatusCode::kBusy, "write queue full"};
  }
  // REQUIRES (endpoint.h): the target was imported on this endpoint, so it is a TcpRemoteRegion.
  const auto* target = static_cast<const TcpRemoteRegion*>(request.target);
  FrameHeader header;
  header.type = FrameType::kWrite;
  header.region_id = target->descriptor().region_id;
  header.length = request.length;
  header.write_key = target->write_key();
  header.offset = request.target_offset;
  header.imm = request.imm;
  header.notice = request.notice;
  Outgoing frame;
  header.encode(frame.header);
  frame.payload = request.source->bytes().data() + request.source_offset;
  frame.payload_length = request.length;
  frame.cookie = request.cookie;
  frame.is_write = true;
  return enqueue(std::move(frame));
}

Status TcpEndpoint::do_send_control(std::span<const std::byte> message) {
  IMGCAST_RETURN_IF_ERROR(failure_);  // latched: every later call returns it
  FrameHeader header;
  header.type = FrameType::kControl;
  header.length = static_cast<std::uint32_t>(message.size());
  Outgoing frame;
  header.encode(frame.header);
  frame.control.assign(message.begin(), message.end());
  frame.payload = frame.control.data();  // the vector's buffer survives moves
  frame.payload_length = header.length;
  return enqueue(std::move(frame));
}

Status TcpEndpoint::enqueue(Outgoing&& frame) {
  if (queued_ == ring_.size()) {
    // Only control messages can get here (writes are bounded above): grow, keeping order.
    std::vector<Outgoing> bigger(ring_.size() * 2);
    for (std::size_t i = 0; i < queued_; ++i) {
      bigger[i] = std::move(ring_[(head_ + i) % ring_.size()]);
    }
    ring_ = std::move(bigger);
    head_ = 0;
  }
  if (frame.is_write)
    ++writes_queued_;
  ring_[(head_ + queued_) % ring_.size()] = std::move(frame);
  ++queued_;
  // Try at once: usually the socket has room, and the frame leaves with no extra wake-up. Its
  // WriteDone is still delivered by the next poll(), never inline.
  flush();
  return Status::ok();
}

void TcpEndpoint::flush() {
  while (queued_ > 0 && failure_.is_ok()) {
    iovec iov[2 * kMaxFramesPerSend];
    int count = 0;
    for (std::size_t i = 0; i < queued_ && i < kMaxFramesPerSend; ++i) {
      const Outgoing& f = ring_[(head_ + i) % ring_.size()];
      std::uint64_t skip = f.sent;
      if (skip < FrameHeader::kBytes) {
        iov[count++] = {const_cast<std::byte*>(f.header.data()) + skip, FrameHeader::kBytes - skip};
        skip = 0;
      } else {
        skip -= FrameHeader::kBytes;
      }
      if (f.payload_length > skip) {
        iov[count++] = {const_cast<std::byte*>(f.payload) + skip, f.payload_length - skip};
      }
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(count);
    const ssize_t n = ::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        set_want_write(true);
        return;
      }
      fail(socket_error("sending to", errno));
      return;
    }
    // Retire the frames this call completed; the last one may be partial.
    std::uint64_t left = static_cast<std::uint64_t>(n);
    while (left > 0 && queued_ > 0) {
      Outgoing& f = ring_[head_];
      const std::uint64_t total = FrameHeader::kBytes + std::uint64_t{f.payload_length};
      const std::uint64_t take = std::min(left, total - f.sent);
      f.sent += take;
      left -= take;
      if (f.sent < total)
        break;
      if (f.is_write) {
        --writes_queued_;
        core_->queue.complete(WriteDone{this, f.cookie, Status::ok()});
      }
      f.control.clear();
      f = Outgoing{};
      head_ = (head_ + 1) % ring_.size();
      --queued_;
    }
  }
  set_want_write(false);
}

void TcpEndpoint::set_want_write(bool want) {
  if (want == want_write_ || !failure_.is_ok())
    return;
  epoll_event event{};
  event.events = EPOLLIN | (want ? EPOLLOUT : 0u);
  event.data.ptr = static_cast<EpollHandler*>(this);
  if (::epoll_ctl(core_->epoll.get(), EPOLL_CTL_MOD, socket_.get(), &event) != 0) {
    fail({StatusCode::kIoError,
          fmt::format("cannot watch the connection to {}: {}", peer_name_, std::strerror(errno))});
    return;
  }
  want_write_ = want;
}

void TcpEndpoint::on_events(std::uint32_t events) {
  if (!failure_.is_ok())
    return;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
    receive();
  if (failure_.is_ok() && (events & EPOLLOUT))
    flush();
}

void TcpEndpoint::receive() {
  std::uint64_t budget = std::max<std::uint64_t>(core_->tcp_options.receive_budget, 1);
  while (failure_.is_ok() && budget > 0) {
    // Each recvmsg fills what the current step needs and, after a payload, the next header
    // too (the iovec's second part), so a stream of chunks costs one syscall per wake-up.
    iovec iov[2];
    int count = 0;
    std::byte* payload_target = nullptr;
    std::uint64_t payload_want = 0;
    if (step_ == ReceiveStep::kHeader) {
      iov[count++] = {header_buf_.data() + header_got_, FrameHeader::kBytes - header_got_};
    } else {
      if (step_ == ReceiveStep::kPayload) {
        // Look the region up again each time: it may have been deregistered meanwhile.
        // And the grant: a writer whose grant was revoked mid-frame writes no further byte.
        const auto it = core_->regions.find(frame_.region_id);
        if (it == core_->regions.end()) {
          fail({StatusCode::kClosed,
                fmt::format("region {} was deregistered while {} was writing into it",
                            frame_.region_id, peer_name_)});
          return;
        }
        if (!it->second.owner->allows_writer(id())) {
          fail({StatusCode::kPermissionDenied,
                fmt::format("{} lost its right to write into region {} while writing", peer_name_,
                            frame_.region_id)});
          return;
        }
        if (it->second.file >= 0) {
          const std::int64_t landed = splice_payload(it->second.file, frame_.offset + payload_got_,
                                                     frame_.length - payload_got_);
          if (landed < 0)
            return;  // failed
          if (landed == 0)
            break;  // all read: the mark below decides when we are woken next
          budget -= std::min(budget, static_cast<std::uint64_t>(landed));
          payload_got_ += static_cast<std::uint64_t>(landed);
          if (payload_got_ == frame_.length) {
            core_->queue.complete(WriteArrived{this, frame_.imm, frame_.length, frame_.notice});
            step_ = ReceiveStep::kHeader;
          }
          continue;
        }
        payload_target = it->second.bytes.data() + frame_.offset + payload_got_;
      } else {
        payload_target = control_buf_.data() + payload_got_;
      }
      payload_want = frame_.length - payload_got_;
      iov[count++] = {payload_target, payload_want};
      iov[count++] = {header_buf_.data(), FrameHeader::kBytes};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(count);
    const ssize_t n = ::recvmsg(socket_.get(), &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;  // all read: the mark below decides when we are woken next
      fail(socket_error("receiving from", errno));
      return;
    }
    if (n == 0) {
      const bool between_frames = step_ == ReceiveStep::kHeader && header_got_ == 0;
      fail({StatusCode::kClosed, fmt::format("peer {} hung up{}", peer_name_,
                                             between_frames ? "" : " in the middle of a frame")});
      return;
    }
    std::uint64_t got = static_cast<std::uint64_t>(n);
    budget -= std::min(budget, got);
    if (step_ == ReceiveStep::kHeader) {
      header_got_ += got;
    } else {
      const std::uint64_t into_payload = std::min(got, payload_want);
      payload_got_ += into_payload;
      header_got_ = got - into_payload;  // bytes of the next header that came along
      if (payload_got_ == frame_.length) {
        if (step_ == ReceiveStep::kPayload) {
          SPDLOG_LOGGER_TRACE(&log(), "write from {}: imm {} length {}", peer_name_, frame_.imm,
                              frame_.length);
          core_->queue.complete(WriteArrived{this, frame_.imm, frame_.length, frame_.notice});
        } else {
          core_->queue.complete(ControlArrived{this, std::move(control_buf_)});
          control_buf_ = {};
        }
        step_ = ReceiveStep::kHeader;
      }
    }
    if (step_ == ReceiveStep::kHeader && header_got_ == FrameHeader::kBytes) {
      header_got_ = 0;
      if (!start_frame())
        return;
    }
  }
  // Whether the socket ran dry or the budget ran out (bytes perhaps still queued), the mark is
  // what the current frame still needs. One left from an earlier, larger need (a chunk's
  // payload) would keep a small last frame, queued whole, from ever waking us: level-triggered
  // epoll reports the socket only once that many bytes are there.
  if (failure_.is_ok())
    set_low_water(bytes_sure_to_come());
}

std::uint64_t TcpEndpoint::bytes_sure_to_come() const noexcept {
  return step_ == ReceiveStep::kHeader ? FrameHeader::kBytes - header_got_
                                       : frame_.length - payload_got_;
}

void TcpEndpoint::set_low_water(std::uint64_t want) {
  // Only bytes that are sure to come: the rest of a header, or of the payload it announced (a
  // frame is never cut short but by a hang-up, and a hang-up wakes the poller whatever the mark).
  const int value = static_cast<int>(std::clamp<std::uint64_t>(want, 1, kMaxLowWater));
  if (value == low_water_)
    return;
  if (::setsockopt(socket_.get(), SOL_SOCKET, SO_RCVLOWAT, &value, sizeof value) == 0)
    low_water_ = value;
}

bool TcpEndpoint::start_frame() {
  // Before trust() a control message is held to the small bound: a 48-byte header must not make
  // an unauthenticated peer's connection allocate a megabyte.
  const auto limit = static_cast<std::uint32_t>(max_incoming_control_bytes());
  const auto header = FrameHeader::decode(header_buf_, limit);
  if (!header) {
    fail({StatusCode::kProtocolError,
          fmt::format("{} sent a malformed frame header (or a control message over the {} bytes "
                      "allowed {})",
                      peer_name_, limit, trusted() ? "" : "before authentication")});
    return false;
  }
  frame_ = *header;
  payload_got_ = 0;
  if (frame_.type == FrameType::kControl) {
    control_buf_.resize(frame_.length);
    step_ = ReceiveStep::kControl;
    if (frame_.length == 0) {
      core_->queue.complete(ControlArrived{this, {}});
      step_ = ReceiveStep::kHeader;
    }
    return true;
  }
  // A write may land only in a region registered for remote writes, with its key, from an
  // endpoint its owner granted, in range. Checked before a payload byte is read.
  const auto it = core_->regions.find(frame_.region_id);
  if (it == core_->regions.end() || !it->second.remote_write ||
      it->second.write_key != frame_.write_key) {
    fail({StatusCode::kPermissionDenied,
          fmt::format("{} tried to write into region {} without its key", peer_name_,
                      frame_.region_id)});
    return false;
  }
  if (!it->second.owner->allows_writer(id())) {
    fail({StatusCode::kPermissionDenied,
          fmt::format("{} tried to write into region {} on a connection it was not granted",
                      peer_name_, frame_.region_id)});
    return false;
  }
  const std::uint64_t size = it->second.bytes.size();
  if (frame_.offset > size || frame_.length > size - frame_.offset) {
    fail({StatusCode::kOutOfRange,
          fmt::format("{} tried to write [{}, +{}) outside the {}-byte region {}", peer_name_,
                      frame_.offset, frame_.length, size, frame_.region_id)});
    return false;
  }
  step_ = ReceiveStep::kPayload;
  return true;
}

std::int64_t TcpEndpoint::splice_payload(int file, std::uint64_t offset, std::uint64_t want) {
  if (!pipe_write_.valid()) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      fail({StatusCode::kIoError, fmt::format("cannot make a pipe to receive from {}: {}",
                                              peer_name_, std::strerror(errno))});
      return -1;
    }
    pipe_read_ = UniqueFd(fds[0]);
    pipe_write_ = UniqueFd(fds[1]);
    // A larger pipe only saves syscalls: a user over its pipe-buffer quota keeps 64 KiB.
    (void)::fcntl(fds[1], F_SETPIPE_SZ, kPipeBytes);
  }
  ssize_t in = -1;
  do {
    in = ::splice(socket_.get(), nullptr, pipe_write_.get(), nullptr, want,
                  SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  } while (in < 0 && errno == EINTR);
  if (in < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return 0;
    fail(socket_error("receiving from", errno));
    return -1;
  }
  if (in == 0) {
    fail(
        {StatusCode::kClosed, fmt::format("peer {} hung up in the middle of a frame", peer_name_)});
    return -1;
  }
  // Empty the pipe before anything else: what stays in it would be taken for the next bytes.
  loff_t at = static_cast<loff_t>(offset);
  for (ssize_t left = in; left > 0;) {
    const ssize_t out = ::splice(pipe_read_.get(), nullptr, file, &at,
                                 static_cast<std::size_t>(left), SPLICE_F_MOVE);
    if (out < 0 && errno == EINTR)
      continue;
    if (out <= 0) {
      const int error = out < 0 ? errno : 0;
      const bool full = error == ENOSPC || error == EDQUOT;
      fail({full ? StatusCode::kNoSpace : StatusCode::kIoError,
            fmt::format("writing what {} sent into the region's file failed: {}", peer_name_,
                        error != 0 ? std::strerror(error) : "nothing was written")});
      return -1;
    }
    left -= out;
  }
  return in;
}

Status TcpEndpoint::socket_error(const char* what, int error) const {
  // A reset is how a peer that died with our bytes unread goes away: the same "peer gone" as a
  // clean hang-up, so callers see kClosed for both; anything else is a local I/O error.
  const bool gone = error == ECONNRESET || error == EPIPE;
  return {gone ? StatusCode::kClosed : StatusCode::kIoError,
          fmt::format("{} {} failed: {}", what, peer_name_, std::strerror(error))};
}

void TcpEndpoint::fail(Status status) {
  if (!failure_.is_ok())
    return;
  log().debug("connection to {} failed: {}", peer_name_, status.to_string());
  failure_ = status;
  ::epoll_ctl(core_->epoll.get(), EPOLL_CTL_DEL, socket_.get(), nullptr);
  ::shutdown(socket_.get(), SHUT_RDWR);
  // Every accepted write completes exactly once, failed writes included.
  for (; queued_ > 0; --queued_) {
    Outgoing& f = ring_[head_];
    if (f.is_write)
      core_->queue.complete(WriteDone{this, f.cookie, failure_});
    f = Outgoing{};
    head_ = (head_ + 1) % ring_.size();
  }
  writes_queued_ = 0;
  core_->queue.complete(PeerFailed{this, failure_});
}

}  // namespace imgcast::transport::tcp
