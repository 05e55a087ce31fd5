#include "transport/verbs/outbound_queue.h"

#include <algorithm>

#include "transport/verbs/rdma_wire.h"

namespace imgcast::transport::verbs {

OutboundQueue::OutboundQueue(std::uint32_t send_depth, std::uint32_t signal_every,
                             std::span<std::byte> send_buffers, std::uint32_t buffer_bytes)
    : sends_(send_depth, signal_every), send_buffers_(send_buffers), buffer_bytes_(buffer_bytes) {
  for (std::uint32_t i = send_depth; i > 0; --i)
    free_buffers_.push_back(i - 1);
}

void OutboundQueue::start(CreditLedger credits, std::uint32_t peer_buffer_bytes) {
  credits_.emplace(credits);
  peer_buffer_bytes_ = std::min(buffer_bytes_, peer_buffer_bytes);
}

void OutboundQueue::add_write(std::uint32_t slot, std::uint32_t imm, std::uint32_t length,
                              std::uint64_t notice, std::span<const WrPiece> pieces) {
  Op announce(Op::Kind::kNotice);
  announce.imm = imm;
  announce.length = length;
  announce.notice = notice;
  backlog_.push_back(std::move(announce));
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    Op write(Op::Kind::kWrite);
    write.piece = pieces[i];
    write.slot = slot;
    write.imm = imm;
    write.last = i + 1 == pieces.size();
    backlog_.push_back(std::move(write));
  }
}

void OutboundQueue::add_control(std::span<const std::byte> message) {
  // Fragmented as it is posted, when the peer's buffer size is known (connecting: not yet).
  Op control(Op::Kind::kControl);
  control.message.assign(message.begin(), message.end());
  backlog_.push_back(std::move(control));
}

std::span<std::byte> OutboundQueue::buffer(std::uint32_t i) const noexcept {
  return send_buffers_.subspan(std::size_t{i} * buffer_bytes_, peer_buffer_bytes_);
}

bool OutboundQueue::plan_credit(PlannedWr& wr) {
  if (!credits_->should_send_credit() || sends_.free_slots() == 0 || free_buffers_.empty())
    return false;
  wr.buffer = free_buffers_.back();
  free_buffers_.pop_back();
  wr.opcode = PlannedWr::Opcode::kSend;
  wr.bytes = static_cast<std::uint32_t>(encode_credit(buffer(wr.buffer), credits_->take_owed()));
  credits_->consume();
  const SendTracker::Post post = sends_.next({SendTag::Kind::kBuffer, wr.buffer}, false);
  wr.wr_id = post.wr_id;
  wr.signaled = post.signaled;
  return true;
}

OutboundQueue::Next OutboundQueue::plan(Op& op, PlannedWr& wr) {
  const bool needs_credit = op.kind != Op::Kind::kWrite || op.last;
  const bool needs_buffer = op.kind != Op::Kind::kWrite;
  if (sends_.free_slots() <= 1 || (needs_credit && !credits_->can_send_data()) ||
      (needs_buffer && free_buffers_.size() <= 1)) {
    return Next::kBlocked;
  }
  if (needs_credit)
    credits_->consume();  // WITH_IMM and SENDs take a receive at the peer; plain writes do not
  if (op.kind == Op::Kind::kWrite) {
    wr.opcode = op.last ? PlannedWr::Opcode::kWriteWithImm : PlannedWr::Opcode::kWrite;
    wr.piece = op.piece;
    wr.imm = op.imm;
    const SendTracker::Post post =
        sends_.next(op.last ? SendTag{SendTag::Kind::kWrite, op.slot} : SendTag{}, op.last);
    wr.wr_id = post.wr_id;
    wr.signaled = post.signaled;
    return Next::kPosted;
  }
  wr.opcode = PlannedWr::Opcode::kSend;
  wr.buffer = free_buffers_.back();
  free_buffers_.pop_back();
  const std::span<std::byte> out = buffer(wr.buffer);
  bool done = true;
  if (op.kind == Op::Kind::kNotice) {
    wr.bytes = static_cast<std::uint32_t>(
        encode_notice(out, credits_->take_owed(), op.imm, op.length, op.notice));
  } else {
    const std::size_t left = op.message.size() - op.sent;
    const std::size_t n =
        std::min<std::size_t>(peer_buffer_bytes_ - WireMessage::kHeaderBytes, left);
    done = n == left;
    const std::uint8_t flags = (op.sent == 0 ? kFirstFragment : 0) | (done ? kLastFragment : 0);
    wr.bytes = static_cast<std::uint32_t>(
        encode_control(out, credits_->take_owed(), flags,
                       std::span<const std::byte>(op.message).subspan(op.sent, n)));
    op.sent += n;
  }
  const SendTracker::Post post = sends_.next({SendTag::Kind::kBuffer, wr.buffer}, false);
  wr.wr_id = post.wr_id;
  wr.signaled = post.signaled;
  return done ? Next::kPosted : Next::kPostedMore;
}

void OutboundQueue::on_send_completion(std::uint64_t wr_id, std::vector<SendTag>& writes) {
  freed_.clear();
  sends_.on_completion(wr_id, freed_);
  for (const SendTag& tag : freed_) {
    if (tag.kind == SendTag::Kind::kBuffer)
      free_buffers_.push_back(tag.index);
    else if (tag.kind == SendTag::Kind::kWrite)
      writes.push_back(tag);
  }
}

void OutboundQueue::clear() {
  backlog_.clear();
  freed_.clear();
  sends_.retire_all(freed_);  // the buffers are not reused: the QP never posts again
}

}  // namespace imgcast::transport::verbs
