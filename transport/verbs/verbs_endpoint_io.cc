// VerbsEndpoint's data path: posting writes and control messages through the backlog, and
// handling completions. Never throws; failures are latched (VerbsEndpoint::fail).
#include <arpa/inet.h>
#include <fmt/format.h>

#include "transport/log.h"
#include "transport/verbs/rdma_wire.h"
#include "transport/verbs/verbs_endpoint.h"
#include "transport/verbs/verbs_memory_region.h"
#include "transport/verbs/verbs_remote_region.h"

namespace imgcast::transport::verbs {

namespace {

// What a failed work completion means, for the one line a user reads.
std::string explain(ibv_wc_status status) {
  switch (status) {
    case IBV_WC_REM_ACCESS_ERR:
      return "remote access error: the peer refused the write (its region was deregistered, or "
             "the key or range is wrong)";
    case IBV_WC_RETRY_EXC_ERR:
      return "transport retry counter exceeded: the peer does not answer (it died, or the link "
             "is down)";
    case IBV_WC_RNR_RETRY_EXC_ERR:
      return "receiver not ready: the peer had no receive posted";
    case IBV_WC_WR_FLUSH_ERR:
      return "work request flushed: the connection had already failed";
    default:
      return ibv_wc_status_str(status);
  }
}

}  // namespace

std::byte* VerbsEndpoint::receive_buffer(std::uint32_t i) const noexcept {
  return buffers_.data() + std::size_t{i} * buffer_bytes_;
}

std::byte* VerbsEndpoint::send_buffer(std::uint32_t i) const noexcept {
  return buffers_.data() + (std::size_t{receive_depth_} + i) * buffer_bytes_;
}

ibv_sge VerbsEndpoint::buffer_sge(std::byte* at, std::size_t bytes) const noexcept {
  return {reinterpret_cast<std::uintptr_t>(at), static_cast<std::uint32_t>(bytes),
          buffer_mr_->lkey};
}

Status VerbsEndpoint::do_post_write(const WriteRequest& request) {
  if (!failure_.is_ok())
    return failure_;
  if (request.source->descriptor().kind != Kind::kVerbs ||
      request.target->descriptor().kind != Kind::kVerbs) {
    return {StatusCode::kInvalidArgument, "a verbs write needs a verbs source and target"};
  }
  if (free_slots_.empty()) {
    return {StatusCode::kBusy, fmt::format("{} writes in flight to {}", slots_.size(), peer_name_)};
  }
  // REQUIRES (endpoint.h): source registered on this endpoint's context, target imported here.
  const auto* source = static_cast<const VerbsMemoryRegion*>(request.source);
  const auto* target = static_cast<const VerbsRemoteRegion*>(request.target);
  pieces_.clear();
  plan_write(source->layout(), request.source_offset, target->layout(), request.target_offset,
             request.length, core_->info.max_msg_bytes, pieces_);
  const std::uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  slots_[slot] = {request.cookie, true};
  Op notice(Op::Kind::kNotice);
  notice.imm = request.imm;
  notice.length = request.length;
  notice.notice = request.notice;
  backlog_.push_back(std::move(notice));
  for (std::size_t i = 0; i < pieces_.size(); ++i) {
    Op write(Op::Kind::kWrite);
    write.piece = pieces_[i];
    write.slot = slot;
    write.imm = request.imm;
    write.last = i + 1 == pieces_.size();
    backlog_.push_back(std::move(write));
  }
  pump();
  return Status::ok();
}

Status VerbsEndpoint::do_send_control(std::span<const std::byte> message) {
  if (!failure_.is_ok())
    return failure_;
  // Fragmented as it is posted, when the peer's buffer size is known (connecting: not yet).
  Op control(Op::Kind::kControl);
  control.fragment.assign(message.begin(), message.end());
  backlog_.push_back(std::move(control));
  pump();
  return Status::ok();
}

void VerbsEndpoint::pump() {
  if (state_ != State::kEstablished)
    return;
  for (;;) {
    // A credit return may jump the queue: it carries no data, so it cannot break the order.
    // It may take the last send slot and buffer, which data leaves for it.
    if (credits_->should_send_credit() && sends_.free_slots() > 0 && !free_send_buffers_.empty()) {
      if (!post_credit())
        return;
      continue;
    }
    if (backlog_.empty())
      return;
    Op& op = backlog_.front();
    const bool needs_credit = op.kind != Op::Kind::kWrite || op.last;
    const bool needs_buffer = op.kind != Op::Kind::kWrite;
    if (sends_.free_slots() <= 1 || (needs_credit && !credits_->can_send_data()) ||
        (needs_buffer && free_send_buffers_.size() <= 1)) {
      return;  // a completion or a credit return will call pump() again
    }
    const Posted posted = post_one(op);
    if (posted == Posted::kFailed)
      return;  // fail() has emptied the backlog
    if (posted == Posted::kDone)
      backlog_.pop_front();  // else a control message with fragments left: go round again
  }
}

VerbsEndpoint::Posted VerbsEndpoint::post_one(Op& op) {
  if (op.kind == Op::Kind::kWrite) {
    ibv_sge sge{op.piece.local_addr, op.piece.length, op.piece.lkey};
    ibv_send_wr wr{};
    const SendTracker::Post post =
        sends_.next(op.last ? SendTag{SendTag::Kind::kWrite, op.slot} : SendTag{}, op.last);
    wr.wr_id = post.wr_id;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = op.last ? IBV_WR_RDMA_WRITE_WITH_IMM : IBV_WR_RDMA_WRITE;
    wr.send_flags = post.signaled ? IBV_SEND_SIGNALED : 0;
    wr.imm_data = htonl(op.imm);  // the immediate travels in network order
    wr.wr.rdma.remote_addr = op.piece.remote_addr;
    wr.wr.rdma.rkey = op.piece.rkey;
    if (op.last)
      credits_->consume();  // WITH_IMM consumes a receive at the peer; plain writes do not
    ibv_send_wr* bad = nullptr;
    if (const int error = ibv_post_send(qp_.get(), &wr, &bad); error != 0) {
      fail({StatusCode::kIoError,
            describe_errno("ibv_post_send (write)", error) + " to " + peer_name_});
      return Posted::kFailed;
    }
    SPDLOG_LOGGER_TRACE(&log(), "verbs: write imm {} piece of {} bytes to {}", op.imm,
                        op.piece.length, peer_name_);
    return Posted::kDone;
  }
  const std::uint32_t buffer = free_send_buffers_.back();
  free_send_buffers_.pop_back();
  const std::span<std::byte> out(send_buffer(buffer), peer_buffer_bytes_);
  std::size_t bytes = 0;
  bool done = true;
  if (op.kind == Op::Kind::kNotice) {
    bytes = encode_notice(out, credits_->take_owed(), op.imm, op.length, op.notice);
  } else {
    const std::size_t room = peer_buffer_bytes_ - WireMessage::kHeaderBytes;
    const std::size_t left = op.fragment.size() - op.sent;
    const std::size_t n = std::min(room, left);
    std::uint8_t flags = op.sent == 0 ? kFirstFragment : 0;
    done = n == left;
    if (done)
      flags |= kLastFragment;
    bytes = encode_control(out, credits_->take_owed(), flags,
                           std::span<const std::byte>(op.fragment).subspan(op.sent, n));
    op.sent += n;
  }
  credits_->consume();
  if (!post_send_buffer(bytes, buffer, false))
    return Posted::kFailed;
  return done ? Posted::kDone : Posted::kPartly;
}

bool VerbsEndpoint::post_credit() {
  const std::uint32_t buffer = free_send_buffers_.back();
  free_send_buffers_.pop_back();
  const std::size_t bytes =
      encode_credit({send_buffer(buffer), peer_buffer_bytes_}, credits_->take_owed());
  credits_->consume();
  return post_send_buffer(bytes, buffer, false);
}

bool VerbsEndpoint::post_send_buffer(std::size_t bytes, std::uint32_t buffer, bool must_signal) {
  const SendTracker::Post post = sends_.next({SendTag::Kind::kBuffer, buffer}, must_signal);
  ibv_sge sge = buffer_sge(send_buffer(buffer), bytes);
  ibv_send_wr wr{};
  wr.wr_id = post.wr_id;
  wr.sg_list = &sge;
  wr.num_sge = 1;
  wr.opcode = IBV_WR_SEND;
  wr.send_flags = post.signaled ? IBV_SEND_SIGNALED : 0;
  ibv_send_wr* bad = nullptr;
  if (const int error = ibv_post_send(qp_.get(), &wr, &bad); error != 0) {
    fail({StatusCode::kIoError, describe_errno("ibv_post_send", error) + " to " + peer_name_});
    return false;
  }
  return true;
}

bool VerbsEndpoint::post_receive(std::uint32_t buffer) {
  ibv_sge sge = buffer_sge(receive_buffer(buffer), buffer_bytes_);
  ibv_recv_wr wr{};
  wr.wr_id = kReceiveBit | buffer;
  wr.sg_list = &sge;
  wr.num_sge = 1;
  ibv_recv_wr* bad = nullptr;
  if (const int error = ibv_post_recv(qp_.get(), &wr, &bad); error != 0) {
    fail({StatusCode::kIoError, describe_errno("ibv_post_recv", error) + " for " + peer_name_});
    return false;
  }
  return true;
}

void VerbsEndpoint::progress() {
  // Not before ESTABLISHED (nothing may precede PeerAccepted). A failed endpoint's CQ is still
  // drained, its flushes ignored: a re-armed CQ left non-empty may signal again at once, and
  // poll() would never sleep.
  if (state_ == State::kConnecting || state_ == State::kAccepting)
    return;
  std::array<ibv_wc, 32> wcs;
  for (;;) {
    const int n = ibv_poll_cq(cq_.get(), static_cast<int>(wcs.size()), wcs.data());
    if (n < 0) {
      fail({StatusCode::kIoError, fmt::format("ibv_poll_cq failed for {}", peer_name_)});
      return;
    }
    for (int i = 0; i < n; ++i)
      on_completion(wcs[i]);
    if (n < static_cast<int>(wcs.size()))
      break;
  }
  pump();
}

void VerbsEndpoint::on_completion(const ibv_wc& wc) {
  if (!failure_.is_ok())
    return;  // flushed after the failure: already accounted for
  const bool receive = (wc.wr_id & kReceiveBit) != 0;
  if (wc.status != IBV_WC_SUCCESS) {
    // Only wr_id, status and vendor_err are valid in a failed completion, not the opcode.
    fail({StatusCode::kIoError, fmt::format("RDMA {} with {} failed: {} (vendor error {:#x})",
                                            receive ? "receive" : "send", peer_name_,
                                            explain(wc.status), wc.vendor_err)});
    return;
  }
  if (receive) {
    const auto buffer = static_cast<std::uint32_t>(wc.wr_id & ~kReceiveBit);
    if (wc.opcode == IBV_WC_RECV_RDMA_WITH_IMM) {
      on_write_with_imm(buffer, ntohl(wc.imm_data));
    } else {
      on_receive(buffer, wc.byte_len);
    }
    return;
  }
  freed_.clear();
  sends_.on_completion(wc.wr_id, freed_);
  for (const SendTag& tag : freed_) {
    if (tag.kind == SendTag::Kind::kBuffer) {
      free_send_buffers_.push_back(tag.index);
    } else if (tag.kind == SendTag::Kind::kWrite) {
      // Local completion of the last WR of an RC write: the peer acked all of it.
      slots_[tag.index].used = false;
      free_slots_.push_back(tag.index);
      core_->complete(WriteDone{this, slots_[tag.index].cookie, Status::ok()});
    }
  }
}

void VerbsEndpoint::on_receive(std::uint32_t buffer, std::uint32_t bytes) {
  const auto message =
      decode_message({receive_buffer(buffer), bytes}, buffer_bytes_ - WireMessage::kHeaderBytes);
  if (!message) {
    fail({StatusCode::kProtocolError,
          fmt::format("{} sent a malformed {}-byte message", peer_name_, bytes)});
    return;
  }
  if (!credits_->on_credits_returned(message->credits)) {
    fail({StatusCode::kProtocolError,
          fmt::format("{} returned more credits than it was given", peer_name_)});
    return;
  }
  if (message->type == MessageType::kNotice) {
    notices_.push_back(*message);
  } else if (message->type == MessageType::kControl) {
    // The fragment is copied out here, before the buffer is posted again below.
    const auto result = assembler_.add(message->flags, message->fragment);
    if (result == ControlAssembler::Result::kMalformed) {
      fail({StatusCode::kProtocolError,
            fmt::format("{} sent control fragments out of order or too long", peer_name_)});
      return;
    }
    if (result == ControlAssembler::Result::kComplete)
      core_->complete(ControlArrived{this, assembler_.take()});
  }
  if (post_receive(buffer))
    credits_->on_receive_reposted();
}

void VerbsEndpoint::on_write_with_imm(std::uint32_t buffer, std::uint32_t imm) {
  // RC order: the notice SEND was posted before the write, so it has arrived (rdma_wire.h).
  if (notices_.empty() || notices_.front().imm != imm) {
    fail({StatusCode::kProtocolError,
          fmt::format("{} wrote chunk {} without announcing it", peer_name_, imm)});
    return;
  }
  const WireMessage notice = notices_.front();
  notices_.pop_front();
  core_->complete(WriteArrived{this, imm, notice.length, notice.notice});
  if (post_receive(buffer))
    credits_->on_receive_reposted();
}

}  // namespace imgcast::transport::verbs
