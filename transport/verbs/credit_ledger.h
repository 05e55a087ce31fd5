// CreditLedger: receive-queue flow control for one RC connection. A SEND or RDMA_WRITE_WITH_IMM
// that finds no posted receive WR at the peer is an RNR (receiver not ready) error: the QP
// retries and finally fails. So a side may post such a WR only while it holds a credit, one per
// receive WR the peer has posted and not yet seen consumed. Each side learns the other's receive
// depth from the connection's private data and starts with that many credits.
//
// The receiver re-posts each receive buffer as soon as it has read it and owes the sender one
// credit for it. Owed credits ride on the header of every SEND it makes anyway
// (rdma_wire.h); when it has nothing to send it returns them in a kCredit message once
// `return_threshold` are owed. A kCredit message itself consumes a receive WR, so it may use
// the last `reserve` credits that data may not: with both sides out of data credits, each can
// still tell the other what it has freed, and neither waits for the other forever.
// Plain RDMA_WRITEs consume no receive WR and need no credit.
#pragma once

#include <cstdint>

namespace imgcast::transport::verbs {

class CreditLedger {
 public:
  // REQUIRES: peer_receive_depth > reserve; 0 < return_threshold <= own receive depth - reserve.
  CreditLedger(std::uint32_t peer_receive_depth, std::uint32_t reserve,
               std::uint32_t return_threshold)
      : available_(peer_receive_depth),
        limit_(peer_receive_depth),
        reserve_(reserve),
        threshold_(return_threshold) {}

  // Data (a notice, a control fragment, a write with immediate) may be posted.
  bool can_send_data() const noexcept { return available_ > reserve_; }
  // A bare credit return is due and may be posted.
  bool should_send_credit() const noexcept { return owed_ >= threshold_ && available_ > 0; }
  // Takes one credit for a WR about to be posted. REQUIRES: available() > 0.
  void consume() noexcept { --available_; }
  // Credits to put in the header of the SEND being built; they are owed no more.
  std::uint16_t take_owed() noexcept;

  // One of our receive WRs was consumed and has been re-posted: the peer may use it again.
  void on_receive_reposted() noexcept { ++owed_; }
  // The peer returned `n` credits. False when that is more than it could owe us (a peer that
  // does not follow the protocol); the ledger is then unchanged.
  [[nodiscard]] bool on_credits_returned(std::uint32_t n) noexcept;

  std::uint32_t available() const noexcept { return available_; }
  std::uint32_t owed() const noexcept { return owed_; }

 private:
  std::uint32_t available_;
  std::uint32_t limit_;
  std::uint32_t reserve_;
  std::uint32_t threshold_;
  std::uint32_t owed_ = 0;
};

}  // namespace imgcast::transport::verbs
