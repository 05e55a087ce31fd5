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
  IMGCAST_RETURN_IF_ERROR(failure_);  // latched: every later call returns it
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
  out_.add_write(slot, request.imm, request.length, request.notice, pieces_);
  pump();
  return Status::ok();
}

Status VerbsEndpoint::do_send_control(std::span<const std::byte> message) {
  IMGCAST_RETURN_IF_ERROR(failure_);  // latched: every later call returns it
  out_.add_control(message);
  pump();
  return Status::ok();
}

void VerbsEndpoint::pump() {
  if (state_ == State::kEstablished)
    out_.pump([this](const PlannedWr& wr) { return post(wr); });
}

bool VerbsEndpoint::post(const PlannedWr& wr) {
  ibv_sge sge{};
  ibv_send_wr send{};
  if (wr.opcode == PlannedWr::Opcode::kSend) {
    sge = buffer_sge(send_buffer(wr.buffer), wr.bytes);
    send.opcode = IBV_WR_SEND;
  } else {
    sge = {wr.piece.local_addr, wr.piece.length, wr.piece.lkey};
    send.opcode = wr.opcode == PlannedWr::Opcode::kWriteWithImm ? IBV_WR_RDMA_WRITE_WITH_IMM
                                                                : IBV_WR_RDMA_WRITE;
    send.imm_data = htonl(wr.imm);  // the immediate travels in network byte order
    send.wr.rdma.remote_addr = wr.piece.remote_addr;
    send.wr.rdma.rkey = wr.piece.rkey;
  }
  send.wr_id = wr.wr_id;
  send.sg_list = &sge;
  send.num_sge = 1;
  send.send_flags = wr.signaled ? IBV_SEND_SIGNALED : 0;
  ibv_send_wr* bad = nullptr;
  if (const int error = ibv_post_send(qp_.get(), &send, &bad); error != 0) {
    fail({StatusCode::kIoError, describe_errno("ibv_post_send", error) + " to " + peer_name_});
    return false;
  }
  SPDLOG_LOGGER_TRACE(&log(), "verbs: posted wr {} (opcode {}, {} bytes) to {}", wr.wr_id,
                      static_cast<int>(wr.opcode), sge.length, peer_name_);
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
  completed_.clear();
  out_.on_send_completion(wc.wr_id, completed_);
  for (const SendTag& tag : completed_) {
    // Local completion of the last WR of an RC write: the peer acked all of it.
    slots_[tag.index].used = false;
    free_slots_.push_back(tag.index);
    core_->queue.complete(WriteDone{this, slots_[tag.index].cookie, Status::ok()});
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
  if (!out_.credits().on_credits_returned(message->credits)) {
    fail({StatusCode::kProtocolError,
          fmt::format("{} returned more credits than it was given", peer_name_)});
    return;
  }
  if (message->type == MessageType::kNotice) {
    notices_.push_back(*message);
  } else if (message->type == MessageType::kControl) {
    // The fragment is copied out here, before the buffer is posted again below. Untrusted, the
    // peer's message is held to the small bound (endpoint.h).
    assembler_.set_max_message(max_incoming_control_bytes());
    const auto result = assembler_.add(message->flags, message->fragment);
    if (result == ControlAssembler::Result::kMalformed) {
      fail({StatusCode::kProtocolError,
            fmt::format("{} sent control fragments out of order or too long", peer_name_)});
      return;
    }
    if (result == ControlAssembler::Result::kComplete)
      core_->queue.complete(ControlArrived{this, assembler_.take()});
  }
  if (post_receive(buffer))
    out_.credits().on_receive_reposted();
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
  // The rkey cannot be bound to this QP, so a peer that learned it may have written the bytes
  // already; refusing its notice keeps the owner from counting them (memory_region.h).
  if (!core_->writable.any_allows(Endpoint::id())) {
    fail({StatusCode::kPermissionDenied,
          fmt::format("{} wrote chunk {} on a connection no region granted", peer_name_, imm)});
    return;
  }
  core_->queue.complete(WriteArrived{this, imm, notice.length, notice.notice});
  if (post_receive(buffer))
    out_.credits().on_receive_reposted();
}

}  // namespace imgcast::transport::verbs
