// LogRateLimit: the first lines of a window pass, the rest are counted, and the count is handed
// out once (when the window is over, or at the end), never lost and never twice.
#include "transport/log_rate_limit.h"

#include <gtest/gtest.h>

namespace imgcast::transport {
namespace {

using namespace std::chrono_literals;

TEST(LogRateLimit, LetsABurstThroughPerWindowAndCountsTheRest) {
  LogRateLimit limit(2, 10s);
  const auto t0 = LogRateLimit::Clock::time_point{} + 1h;
  EXPECT_TRUE(limit.allow(t0));
  EXPECT_TRUE(limit.allow(t0 + 1s));
  EXPECT_FALSE(limit.allow(t0 + 2s));
  EXPECT_FALSE(limit.allow(t0 + 3s));
  EXPECT_EQ(limit.take_suppressed(t0 + 9s), 0u) << "its window still runs";
  EXPECT_EQ(limit.take_suppressed(t0 + 10s), 2u);
  EXPECT_EQ(limit.take_suppressed(t0 + 10s), 0u) << "handed out once";
  EXPECT_TRUE(limit.allow(t0 + 10s)) << "a new window";
  EXPECT_TRUE(limit.allow(t0 + 11s));
  EXPECT_FALSE(limit.allow(t0 + 12s));
  EXPECT_EQ(limit.take_all(), 1u);
  EXPECT_EQ(limit.take_all(), 0u);
}

TEST(LogRateLimit, AQuietSourceLogsItsNextLineAtOnce) {
  LogRateLimit limit(1, 10s);
  const auto t0 = LogRateLimit::Clock::time_point{} + 1h;
  EXPECT_TRUE(limit.allow(t0));
  EXPECT_TRUE(limit.allow(t0 + 1h)) << "the window opens with the line, not on a fixed tick";
  EXPECT_FALSE(limit.allow(t0 + 1h + 9s));
}

}  // namespace
}  // namespace imgcast::transport
