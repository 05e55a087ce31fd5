// OutboundQueue: everything one endpoint sends, in the order it was posted, turned into work
// requests as the peer's credits (credit_ledger.h), send-queue slots (send_tracker.h) and send
// buffers allow. A write becomes its notice SEND, then its pieces as RDMA WRITEs, the last WITH
// IMMEDIATE and signalled (rdma_wire.h); a control message becomes SENDs of fragments sized
// for the peer's receive buffers. Bare credit returns may jump the queue: they carry no data.
// Pure: it encodes SEND payloads into the send buffers it is given and hands each WR to a
// caller-supplied `post` (the endpoint's ibv_post_send), so its decisions are tested without
// a device.
//
// Resource rules (why no queue can wedge): data leaves the last send slot and the last send
// buffer to credit returns, as it leaves the last credits (CreditLedger's reserve).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "transport/verbs/credit_ledger.h"
#include "transport/verbs/send_tracker.h"
#include "transport/verbs/write_plan.h"

namespace imgcast::transport::verbs {

// One WR for the caller to post.
struct PlannedWr {
  enum class Opcode : std::uint8_t { kSend, kWrite, kWriteWithImm };
  Opcode opcode = Opcode::kSend;
  std::uint64_t wr_id = 0;
  bool signaled = false;
  WrPiece piece;             // kWrite, kWriteWithImm
  std::uint32_t imm = 0;     // kWriteWithImm
  std::uint32_t buffer = 0;  // kSend: the send buffer holding the message
  std::uint32_t bytes = 0;   // kSend: its length
};

class OutboundQueue {
 public:
  // `send_buffers` holds send_depth buffers of `buffer_bytes` each. REQUIRES: send_depth >= 2.
  OutboundQueue(std::uint32_t send_depth, std::uint32_t signal_every,
                std::span<std::byte> send_buffers, std::uint32_t buffer_bytes);

  // The connection is up: the peer's credits and receive buffer size are known. Nothing is
  // posted before. REQUIRES: peer_buffer_bytes > the 8-byte header.
  void start(CreditLedger credits, std::uint32_t peer_buffer_bytes);
  bool started() const noexcept { return credits_.has_value(); }
  // REQUIRES: started().
  CreditLedger& credits() noexcept { return *credits_; }

  // Queues one write: its notice, then `pieces` in order. `slot` comes back in the SendTag of
  // the write's last WR once it completes. REQUIRES: pieces not empty.
  void add_write(std::uint32_t slot, std::uint32_t imm, std::uint32_t length, std::uint64_t notice,
                 std::span<const WrPiece> pieces);
  void add_control(std::span<const std::byte> message);

  // Hands every WR that may go now to `post(const PlannedWr&) -> bool`, in order. A false from
  // `post` (the caller failed the endpoint) stops it at once.
  template <typename Post>
  void pump(Post&& post);

  // A signalled send WR completed: its buffers and every earlier one's are free again. Appends
  // the tags of completed writes (kWrite, slot) to `writes`.
  void on_send_completion(std::uint64_t wr_id, std::vector<SendTag>& writes);
  // The endpoint failed: drops everything queued and forgets what is outstanding.
  void clear();

  bool idle() const noexcept { return backlog_.empty(); }
  std::size_t free_slots() const noexcept { return sends_.free_slots(); }
  std::size_t free_buffers() const noexcept { return free_buffers_.size(); }

 private:
  struct Op {
    enum class Kind : std::uint8_t { kNotice, kWrite, kControl };
    explicit Op(Kind k) : kind(k) {}
    Kind kind;
    WrPiece piece;                   // kWrite
    std::uint32_t imm = 0;           // kNotice; kWrite when last
    std::uint32_t length = 0;        // kNotice: the whole write
    std::uint64_t notice = 0;        // kNotice
    std::uint32_t slot = 0;          // kWrite
    bool last = false;               // kWrite: WITH_IMM, signalled, completes the write
    std::vector<std::byte> message;  // kControl: the whole message
    std::size_t sent = 0;            // kControl: bytes already fragmented
  };
  enum class Next { kBlocked, kPosted, kPostedMore };

  // Builds the next WR of `op` into `wr` if resources allow; kPostedMore: the op has more.
  Next plan(Op& op, PlannedWr& wr);
  bool plan_credit(PlannedWr& wr);
  std::span<std::byte> buffer(std::uint32_t i) const noexcept;

  SendTracker sends_;
  std::span<std::byte> send_buffers_;
  std::uint32_t buffer_bytes_;
  std::vector<std::uint32_t> free_buffers_;
  std::optional<CreditLedger> credits_;
  std::uint32_t peer_buffer_bytes_ = 0;
  std::deque<Op> backlog_;
  std::vector<SendTag> freed_;  // scratch
};

template <typename Post>
void OutboundQueue::pump(Post&& post) {
  if (!started())
    return;
  for (;;) {
    PlannedWr wr;
    if (plan_credit(wr)) {
      if (!post(static_cast<const PlannedWr&>(wr)))
        return;
      continue;
    }
    if (backlog_.empty())
      return;
    const Next next = plan(backlog_.front(), wr);
    if (next == Next::kBlocked)
      return;  // a completion or a credit return will pump again
    if (next == Next::kPosted)
      backlog_.pop_front();
    if (!post(static_cast<const PlannedWr&>(wr)))
      return;
  }
}

}  // namespace imgcast::transport::verbs
