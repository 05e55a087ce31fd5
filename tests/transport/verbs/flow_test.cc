// Flow control and send-queue accounting of the verbs backend, without a device: the credit
// ledgers of two connected sides driven by a simulated RC link (a receive consumed with no
// receive WR posted is the RNR error a real QP would hit), and selective signalling.
#include <gtest/gtest.h>

#include <deque>
#include <random>

#include "transport/verbs/credit_ledger.h"
#include "transport/verbs/send_tracker.h"

namespace imgcast::transport::verbs {
namespace {

TEST(CreditLedger, DataStopsAtTheReserveCreditsDoNot) {
  CreditLedger ledger(8, 2, 4);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(ledger.can_send_data());
    ledger.consume();
  }
  EXPECT_FALSE(ledger.can_send_data());
  EXPECT_EQ(ledger.available(), 2u);
  EXPECT_FALSE(ledger.should_send_credit());  // nothing owed yet
  for (int i = 0; i < 4; ++i)
    ledger.on_receive_reposted();
  EXPECT_TRUE(ledger.should_send_credit());  // the reserve carries the credit return
  EXPECT_EQ(ledger.take_owed(), 4);
  EXPECT_EQ(ledger.owed(), 0u);
}

TEST(CreditLedger, RefusesMoreCreditsThanThePeerCouldOwe) {
  CreditLedger ledger(8, 2, 4);
  EXPECT_FALSE(ledger.on_credits_returned(1));  // nothing was consumed
  ledger.consume();
  ledger.consume();
  EXPECT_FALSE(ledger.on_credits_returned(3));
  EXPECT_EQ(ledger.available(), 6u);  // unchanged by the refused return
  EXPECT_TRUE(ledger.on_credits_returned(2));
  EXPECT_EQ(ledger.available(), 8u);
}

// One side of a simulated connection.
struct Side {
  Side(std::uint32_t depth, std::uint32_t reserve, std::uint32_t threshold)
      : ledger(depth, reserve, threshold), posted(depth) {}
  CreditLedger ledger;
  std::uint32_t posted;  // our receive WRs
  int data_to_send = 0;  // messages the application still wants to send
  int data_received = 0;
  std::deque<std::uint16_t> wire;  // messages on their way to the peer: their credit field
};

// Sends what the ledger allows; returns whether it sent anything.
bool send_some(Side& s, bool data_allowed) {
  if (data_allowed && s.data_to_send > 0 && s.ledger.can_send_data()) {
    s.ledger.consume();
    s.wire.push_back(s.ledger.take_owed());
    --s.data_to_send;
    return true;
  }
  if (s.ledger.should_send_credit()) {
    s.ledger.consume();
    s.wire.push_back(s.ledger.take_owed());
    return true;
  }
  return false;
}

// The peer takes one message off the wire: it must find a posted receive WR.
void deliver(Side& from, Side& to, bool is_data) {
  ASSERT_GT(to.posted, 0u) << "RNR: a message arrived with no receive posted";
  --to.posted;
  const std::uint16_t credits = from.wire.front();
  from.wire.pop_front();
  ++to.posted;  // read and re-posted at once
  to.ledger.on_receive_reposted();
  ASSERT_TRUE(to.ledger.on_credits_returned(credits));
  to.data_received += is_data;
}

// Random interleavings of two sides both sending: never an RNR, never a deadlock.
TEST(CreditLedger, TwoSidesNeverOverrunAndNeverDeadlock) {
  std::mt19937 random(7);
  for (int round = 0; round < 200; ++round) {
    const std::uint32_t depth = 8 + random() % 64;
    const std::uint32_t reserve = 2;
    const std::uint32_t threshold = 1 + random() % (depth - reserve);
    Side a(depth, reserve, threshold), b(depth, reserve, threshold);
    a.data_to_send = random() % 500;
    b.data_to_send = random() % 500;
    const int a_total = a.data_to_send, b_total = b.data_to_send;
    // Which queued messages are data, per direction, so deliveries count the right ones.
    std::deque<bool> a_kinds, b_kinds;
    for (int step = 0; step < 100000; ++step) {
      const bool done = a.data_received == b_total && b.data_received == a_total;
      if (done)
        break;
      const int choice = random() % 4;
      if (choice == 0) {
        const int before = a.data_to_send;
        if (send_some(a, true))
          a_kinds.push_back(a.data_to_send != before);
      } else if (choice == 1) {
        const int before = b.data_to_send;
        if (send_some(b, true))
          b_kinds.push_back(b.data_to_send != before);
      } else if (choice == 2 && !a.wire.empty()) {
        deliver(a, b, a_kinds.front());
        a_kinds.pop_front();
      } else if (choice == 3 && !b.wire.empty()) {
        deliver(b, a, b_kinds.front());
        b_kinds.pop_front();
      }
      if (HasFatalFailure())
        return;
      // Stuck: nothing on the wire and neither side can send, with data left to move.
      const bool quiet = a.wire.empty() && b.wire.empty();
      const bool a_can =
          (a.data_to_send > 0 && a.ledger.can_send_data()) || a.ledger.should_send_credit();
      const bool b_can =
          (b.data_to_send > 0 && b.ledger.can_send_data()) || b.ledger.should_send_credit();
      ASSERT_FALSE(quiet && !a_can && !b_can && (a.data_to_send > 0 || b.data_to_send > 0))
          << "deadlock: depth " << depth << " threshold " << threshold << " round " << round;
    }
    EXPECT_EQ(b.data_received, a_total) << "round " << round;
    EXPECT_EQ(a.data_received, b_total) << "round " << round;
  }
}

TEST(SendTracker, SignalsEveryNthAndTheLastSlot) {
  SendTracker tracker(8, 4);
  std::vector<bool> signaled;
  for (int i = 0; i < 8; ++i)
    signaled.push_back(tracker.next({}, false).signaled);
  // 4th and 8th by the run length; the 8th is also the last free slot.
  EXPECT_EQ(signaled, (std::vector<bool>{false, false, false, true, false, false, false, true}));
  EXPECT_EQ(tracker.free_slots(), 0u);
}

TEST(SendTracker, LastFreeSlotIsSignalledEvenMidRun) {
  SendTracker tracker(3, 3);
  EXPECT_FALSE(tracker.next({}, false).signaled);
  EXPECT_FALSE(tracker.next({}, false).signaled);
  EXPECT_TRUE(tracker.next({}, false).signaled);  // the queue is full: it must drain
  SendTracker other(4, 4);
  EXPECT_TRUE(other.next({}, true).signaled);    // requested
  EXPECT_FALSE(other.next({}, false).signaled);  // the run restarted
}

TEST(SendTracker, ACompletionFreesItsWrAndEveryEarlierOneInOrder) {
  SendTracker tracker(16, 16);
  std::vector<std::uint64_t> ids;
  for (std::uint32_t i = 0; i < 5; ++i)
    ids.push_back(tracker.next({SendTag::Kind::kBuffer, i}, i == 2).wr_id);
  std::vector<SendTag> freed;
  tracker.on_completion(ids[2], freed);
  ASSERT_EQ(freed.size(), 3u);
  for (std::uint32_t i = 0; i < 3; ++i)
    EXPECT_EQ(freed[i].index, i);
  EXPECT_EQ(tracker.free_slots(), 14u);
  freed.clear();
  tracker.on_completion(ids[1], freed);  // already retired: nothing more
  EXPECT_TRUE(freed.empty());
  tracker.retire_all(freed);
  ASSERT_EQ(freed.size(), 2u);
  EXPECT_EQ(freed[1].index, 4u);
  EXPECT_EQ(tracker.free_slots(), 16u);
}

// A long stream through a small queue: slots are always recovered, never leaked.
TEST(SendTracker, AStreamThroughASmallQueueNeverWedges) {
  SendTracker tracker(6, 3);
  std::deque<std::uint64_t> signaled_in_flight;
  std::vector<SendTag> freed;
  std::size_t posted = 0;
  for (int step = 0; step < 10000; ++step) {
    if (tracker.free_slots() > 0) {
      const auto post = tracker.next({SendTag::Kind::kWrite, 0}, false);
      if (post.signaled)
        signaled_in_flight.push_back(post.wr_id);
      ++posted;
    } else {
      ASSERT_FALSE(signaled_in_flight.empty()) << "a full queue with no completion to come";
      tracker.on_completion(signaled_in_flight.front(), freed);
      signaled_in_flight.pop_front();
    }
  }
  while (!signaled_in_flight.empty()) {
    tracker.on_completion(signaled_in_flight.front(), freed);
    signaled_in_flight.pop_front();
  }
  EXPECT_LE(posted - freed.size(), 2u);  // at most signal_every - 1 unsignalled at the tail
}

}  // namespace
}  // namespace imgcast::transport::verbs
