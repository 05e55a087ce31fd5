#include "replicator/plan/link_meter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace imgcast::replicator {
namespace {

using Clock = LinkMeter::Clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// Plays a link of `bytes_per_second` with a first answer delayed by `warm_up`: every burst sent
// is answered one transmission time after the one before. Returns the meter's estimate.
std::optional<double> play(LinkMeter& meter, Clock::time_point start, double bytes_per_second,
                           microseconds warm_up, Clock::time_point* end = nullptr) {
  const auto per_burst = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(meter.burst_bytes() / bytes_per_second));
  Clock::time_point now = start + warm_up;
  std::uint32_t next_answer = 0;
  std::uint32_t sent = 0;
  while (!meter.done(now)) {
    while (auto index = meter.next_to_send()) {
      EXPECT_EQ(*index, sent);
      ++sent;
    }
    if (next_answer == sent) {
      break;  // nothing in flight and nothing to send: the meter is stuck
    }
    EXPECT_TRUE(meter.answered(next_answer++, now));
    now += per_burst;
  }
  if (end != nullptr) {
    *end = now;
  }
  return meter.bytes_per_second();
}

TEST(LinkMeter, MeasuresASlowLinkInTensOfMilliseconds) {
  const auto start = Clock::now();
  LinkMeter meter({}, start);
  Clock::time_point end;
  const auto rate = play(meter, start, 25e6, microseconds(2000), &end);  // 200 Mbit/s
  ASSERT_TRUE(rate);
  EXPECT_NEAR(*rate, 25e6, 25e6 * 0.01);
  EXPECT_LT(end - start, milliseconds(60));
}

TEST(LinkMeter, MeasuresAFastLinkWithEveryBurst) {
  const auto start = Clock::now();
  LinkMeter meter({}, start);
  // The warm-up (slow start, a round trip) is left out: it delays the first answer only.
  const auto rate = play(meter, start, 1.25e9, microseconds(500));  // 10 Gbit/s
  ASSERT_TRUE(rate);
  EXPECT_NEAR(*rate, 1.25e9, 1.25e9 * 0.01);
}

TEST(LinkMeter, KeepsTheWindowInFlightAndWidensItPerAnswer) {
  LinkMeter::Options options;
  options.window = 3;
  options.max_window = 4;
  const auto start = Clock::now();
  LinkMeter meter(options, start);
  EXPECT_EQ(meter.next_to_send(), 0u);
  EXPECT_EQ(meter.next_to_send(), 1u);
  EXPECT_EQ(meter.next_to_send(), 2u);
  EXPECT_EQ(meter.next_to_send(), std::nullopt);
  EXPECT_TRUE(meter.answered(0, start));  // one out, the window one wider: two more go
  EXPECT_EQ(meter.next_to_send(), 3u);
  EXPECT_EQ(meter.next_to_send(), 4u);
  EXPECT_EQ(meter.next_to_send(), std::nullopt);
  EXPECT_TRUE(meter.answered(1, start));  // at max_window: one out, one in
  EXPECT_EQ(meter.next_to_send(), 5u);
  EXPECT_EQ(meter.next_to_send(), std::nullopt);
}

TEST(LinkMeter, ALateAnsweringPeerStillShowsTheLinksPace) {
  // Every answer comes 3 ms after its burst went (a loaded host waking late) on a 10 Gbit/s
  // link: a fixed window of 8 would time 8 bursts per 3 ms, 1.4 Gbit/s.
  const auto start = Clock::now();
  LinkMeter meter({}, start);
  const double rate = 1.25e9;
  const auto per_burst = std::chrono::duration<double>(meter.burst_bytes() / rate);
  std::vector<Clock::time_point> sent_at;
  Clock::time_point link_free = start;
  Clock::time_point now = start;
  std::uint32_t next_answer = 0;
  while (!meter.done(now)) {
    while (meter.next_to_send()) {
      link_free = std::max(link_free, now) +
                  std::chrono::duration_cast<Clock::duration>(per_burst);
      sent_at.push_back(link_free + milliseconds(3));  // when its answer arrives
    }
    now = sent_at[next_answer];
    ASSERT_TRUE(meter.answered(next_answer++, now));
  }
  ASSERT_TRUE(meter.bytes_per_second());
  EXPECT_GT(*meter.bytes_per_second(), rate / 3);
}

TEST(LinkMeter, IgnoresAnswersOutOfOrderOrNeverSent) {
  const auto start = Clock::now();
  LinkMeter meter({}, start);
  EXPECT_FALSE(meter.answered(0, start));  // nothing sent yet
  ASSERT_EQ(meter.next_to_send(), 0u);
  ASSERT_EQ(meter.next_to_send(), 1u);
  EXPECT_FALSE(meter.answered(1, start));  // 0 first
  EXPECT_TRUE(meter.answered(0, start));
  EXPECT_FALSE(meter.answered(0, start));  // twice
  EXPECT_TRUE(meter.answered(1, start + milliseconds(1)));
}

TEST(LinkMeter, GivesUpOnAnAgentThatDoesNotAnswer) {
  const auto start = Clock::now();
  LinkMeter meter({}, start);
  while (meter.next_to_send()) {
  }
  EXPECT_FALSE(meter.done(start + milliseconds(999)));
  EXPECT_TRUE(meter.done(start + milliseconds(1000)));
  EXPECT_EQ(meter.bytes_per_second(), std::nullopt);
}

TEST(LinkMeter, AClockThatDidNotMoveIsNoMeasurement) {
  const auto start = Clock::now();
  LinkMeter meter({}, start);
  for (int i = 0; i < 128; ++i) {
    while (meter.next_to_send()) {
    }
    ASSERT_TRUE(meter.answered(static_cast<std::uint32_t>(i), start));
  }
  EXPECT_EQ(meter.bytes_per_second(), std::nullopt);
}

}  // namespace
}  // namespace imgcast::replicator
