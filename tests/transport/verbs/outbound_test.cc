// OutboundQueue, the part of the verbs endpoint that decides what goes on the wire and when,
// driven by a simulated RC connection: messages are delivered in order, a SEND or WRITE_WITH_IMM
// must find a posted receive (else it is the RNR a real QP would fail with), a signalled WR
// completes only after its delivery, and receivers decode the very bytes the queue encoded.
#include <gtest/gtest.h>

#include <deque>
#include <random>

#include "tests/transport/random_bytes.h"
#include "transport/verbs/control_assembler.h"
#include "transport/verbs/outbound_queue.h"
#include "transport/verbs/rdma_wire.h"

namespace imgcast::transport::verbs {
namespace {

using test::random_bytes;

constexpr std::uint32_t kBufferBytes = 512;  // small: control messages need many fragments

struct Arrived {
  std::uint32_t imm, length;
  std::uint64_t notice;
};

struct Side {
  Side(std::uint32_t send_depth, std::uint32_t signal_every, std::uint32_t receive_depth)
      : buffers(std::size_t{send_depth} * kBufferBytes),
        out(send_depth, signal_every, buffers, kBufferBytes),
        receive_depth(receive_depth),
        posted(receive_depth),
        assembler(1 << 20) {}
  struct Wire {
    PlannedWr wr;
    std::vector<std::byte> bytes;  // a SEND's payload as encoded
  };
  std::vector<std::byte> buffers;
  OutboundQueue out;
  std::uint32_t receive_depth;
  std::uint32_t posted;  // our receive WRs
  ControlAssembler assembler;
  std::deque<Wire> wire;                  // to the peer, in order
  std::deque<std::uint64_t> completable;  // delivered signalled WRs
  std::size_t outstanding = 0;            // WRs in our send queue
  std::deque<std::uint32_t> pieces_since_notice;
  std::deque<Arrived> notices;
  std::vector<Arrived> arrived;
  std::vector<std::vector<std::byte>> controls;
  std::vector<std::uint32_t> writes_done;  // slots

  void pump(std::uint32_t send_depth) {
    out.pump([&](const PlannedWr& wr) {
      EXPECT_LT(outstanding, send_depth) << "send queue overrun";
      ++outstanding;
      Wire w{wr, {}};
      if (wr.opcode == PlannedWr::Opcode::kSend) {
        const auto* at = buffers.data() + std::size_t{wr.buffer} * kBufferBytes;
        w.bytes.assign(at, at + wr.bytes);
      }
      EXPECT_TRUE(wr.opcode != PlannedWr::Opcode::kWriteWithImm || wr.signaled)
          << "a write's last WR must be signalled";
      wire.push_back(std::move(w));
      return true;
    });
  }
};

// The peer takes the next message off `from`'s wire.
void deliver(Side& from, Side& to, std::uint32_t to_send_depth) {
  const Side::Wire w = std::move(from.wire.front());
  from.wire.pop_front();
  if (w.wr.signaled)
    from.completable.push_back(w.wr.wr_id);
  if (w.wr.opcode == PlannedWr::Opcode::kWrite)
    return;  // one-sided: no receive, no completion at the target
  ASSERT_GT(to.posted, 0u) << "RNR: a message arrived with no receive posted";
  --to.posted;
  if (w.wr.opcode == PlannedWr::Opcode::kWriteWithImm) {
    ASSERT_FALSE(to.notices.empty()) << "a write with immediate before its notice";
    ASSERT_EQ(to.notices.front().imm, w.wr.imm);
    to.arrived.push_back(to.notices.front());
    to.notices.pop_front();
  } else {
    const auto m = decode_message(w.bytes, kBufferBytes - WireMessage::kHeaderBytes);
    ASSERT_TRUE(m) << "the queue encoded a message its peer cannot decode";
    ASSERT_TRUE(to.out.credits().on_credits_returned(m->credits));
    if (m->type == MessageType::kNotice) {
      to.notices.push_back({m->imm, m->length, m->notice});
    } else if (m->type == MessageType::kControl) {
      const auto result = to.assembler.add(m->flags, m->fragment);
      ASSERT_NE(result, ControlAssembler::Result::kMalformed);
      if (result == ControlAssembler::Result::kComplete)
        to.controls.push_back(to.assembler.take());
    }
  }
  ++to.posted;  // read and posted again at once
  to.out.credits().on_receive_reposted();
  to.pump(to_send_depth);
}

void complete_one(Side& s) {
  std::vector<SendTag> writes;
  const std::uint64_t id = s.completable.front();
  s.completable.pop_front();
  const std::size_t before = s.out.free_slots();
  s.out.on_send_completion(id, writes);
  s.outstanding -= s.out.free_slots() - before;
  for (const SendTag& t : writes)
    s.writes_done.push_back(t.index);
}

TEST(OutboundQueue, NothingLeavesBeforeStart) {
  std::vector<std::byte> buffers(16 * kBufferBytes);
  OutboundQueue out(16, 4, buffers, kBufferBytes);
  out.add_control(random_bytes(10, 1));
  int posted = 0;
  out.pump([&](const PlannedWr&) { return ++posted, true; });
  EXPECT_EQ(posted, 0);
  out.start(CreditLedger(8, 2, 2), kBufferBytes);
  out.pump([&](const PlannedWr&) { return ++posted, true; });
  EXPECT_EQ(posted, 1);
  EXPECT_TRUE(out.idle());
}

TEST(OutboundQueue, AWriteIsNoticeThenPiecesThenOneSignalledWriteWithImm) {
  std::vector<std::byte> buffers(64 * kBufferBytes);
  OutboundQueue out(64, 16, buffers, kBufferBytes);
  out.start(CreditLedger(32, 2, 8), kBufferBytes);
  const std::vector<WrPiece> pieces = {{1, 2, 3, 4, 100}, {101, 2, 103, 5, 50}};
  out.add_write(7, 42, 150, 0xabcdef, pieces);
  std::vector<PlannedWr> wrs;
  out.pump([&](const PlannedWr& wr) { return wrs.push_back(wr), true; });
  ASSERT_EQ(wrs.size(), 3u);
  EXPECT_EQ(wrs[0].opcode, PlannedWr::Opcode::kSend);
  const auto notice = decode_message(
      std::span(buffers).subspan(std::size_t{wrs[0].buffer} * kBufferBytes, wrs[0].bytes), 500);
  ASSERT_TRUE(notice);
  EXPECT_EQ(notice->imm, 42u);
  EXPECT_EQ(notice->length, 150u);
  EXPECT_EQ(notice->notice, 0xabcdefu);
  EXPECT_EQ(wrs[1].opcode, PlannedWr::Opcode::kWrite);
  EXPECT_EQ(wrs[1].piece, pieces[0]);
  EXPECT_FALSE(wrs[1].signaled);
  EXPECT_EQ(wrs[2].opcode, PlannedWr::Opcode::kWriteWithImm);
  EXPECT_EQ(wrs[2].piece, pieces[1]);
  EXPECT_EQ(wrs[2].imm, 42u);
  EXPECT_TRUE(wrs[2].signaled);
  std::vector<SendTag> writes;
  out.on_send_completion(wrs[2].wr_id, writes);
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].index, 7u);
  EXPECT_EQ(out.credits().available(), 30u);  // the notice and the immediate, not the write
}

TEST(OutboundQueue, DataStopsAtTheReservesAndAFailureClearsEverything) {
  std::vector<std::byte> buffers(8 * kBufferBytes);
  OutboundQueue out(8, 8, buffers, kBufferBytes);
  out.start(CreditLedger(100, 2, 8), kBufferBytes);
  for (int i = 0; i < 20; ++i)
    out.add_control(random_bytes(1, i));
  int posted = 0;
  out.pump([&](const PlannedWr&) { return ++posted, true; });
  EXPECT_EQ(posted, 7);  // one slot (and buffer) left for a credit return
  EXPECT_FALSE(out.idle());
  out.clear();
  EXPECT_TRUE(out.idle());
  EXPECT_EQ(out.free_slots(), 8u);
}

// Random interleavings of both sides writing and sending control messages of every size:
// everything arrives, in order and intact; no RNR, no send-queue overrun; it always drains.
TEST(OutboundQueue, RandomTrafficBothWaysArrivesInOrderAndDrains) {
  std::mt19937 random(11);
  for (int round = 0; round < 60; ++round) {
    const std::uint32_t send_depth = 8 + random() % 40;
    const std::uint32_t signal_every = 1 + random() % (send_depth / 2);
    const std::uint32_t receive_depth = 8 + random() % 40;
    const std::uint32_t threshold = std::max(1u, (receive_depth - 2) / 4);
    Side a(send_depth, signal_every, receive_depth), b(send_depth, signal_every, receive_depth);
    a.out.start(CreditLedger(b.receive_depth, 2, threshold), kBufferBytes);
    b.out.start(CreditLedger(a.receive_depth, 2, threshold), kBufferBytes);
    std::vector<std::vector<std::byte>> a_controls, b_controls;
    std::uint32_t a_writes = 0;
    for (int step = 0; step < 4000; ++step) {
      switch (random() % 6) {
        case 0:
          if (a_writes < 200) {
            const std::vector<WrPiece> pieces(1 + random() % 3, WrPiece{0, 0, 0, 0, 64});
            a.out.add_write(a_writes, a_writes, 64 * static_cast<std::uint32_t>(pieces.size()),
                            ~std::uint64_t{a_writes}, pieces);
            ++a_writes;
            a.pump(send_depth);
          }
          break;
        case 1: {
          const std::size_t sizes[] = {0, 1, 503, 504, 505, 5000};
          auto& list = random() % 2 ? a_controls : b_controls;
          Side& s = &list == &a_controls ? a : b;
          list.push_back(random_bytes(sizes[random() % 6], list.size()));
          s.out.add_control(list.back());
          s.pump(send_depth);
          break;
        }
        case 2:
          if (!a.wire.empty())
            deliver(a, b, send_depth);
          break;
        case 3:
          if (!b.wire.empty())
            deliver(b, a, send_depth);
          break;
        case 4:
          if (!a.completable.empty()) {
            complete_one(a);
            a.pump(send_depth);
          }
          break;
        case 5:
          if (!b.completable.empty()) {
            complete_one(b);
            b.pump(send_depth);
          }
          break;
      }
      if (HasFatalFailure())
        return;
    }
    // Drain: deliver and complete until nothing moves; then everything must have arrived.
    for (int guard = 0; guard < 1000000; ++guard) {
      if (!a.wire.empty()) {
        deliver(a, b, send_depth);
      } else if (!b.wire.empty()) {
        deliver(b, a, send_depth);
      } else if (!a.completable.empty()) {
        complete_one(a);
        a.pump(send_depth);
      } else if (!b.completable.empty()) {
        complete_one(b);
        b.pump(send_depth);
      } else {
        break;
      }
      if (HasFatalFailure())
        return;
    }
    ASSERT_TRUE(a.out.idle() && b.out.idle()) << "wedged in round " << round;
    ASSERT_EQ(b.arrived.size(), a_writes) << "round " << round;
    for (std::uint32_t i = 0; i < a_writes; ++i) {
      EXPECT_EQ(b.arrived[i].imm, i);
      EXPECT_EQ(b.arrived[i].notice, ~std::uint64_t{i});
    }
    EXPECT_EQ(a.writes_done.size(), a_writes) << "round " << round;
    EXPECT_EQ(b.controls, a_controls) << "round " << round;
    EXPECT_EQ(a.controls, b_controls) << "round " << round;
  }
}

}  // namespace
}  // namespace imgcast::transport::verbs
