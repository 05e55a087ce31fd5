// LogRateLimit: lets the first `burst` lines of each `window` through and counts the rest, so
// a crowd of hostile connections (a swarm, a scanner, a node out of file descriptors) cannot
// make a node write unbounded logs. Nothing goes unnoticed: the caller reports the count it held
// back in one summary line once that window is over (take_suppressed), or at its end
// (take_all).
//
// Not thread-safe: owned by the one thread that logs through it.
#pragma once

#include <chrono>
#include <cstddef>

namespace imgcast::transport {

class LogRateLimit {
 public:
  using Clock = std::chrono::steady_clock;

  LogRateLimit(std::size_t burst, Clock::duration window) noexcept;

  // Whether one more line may be logged at `now`; if not, it is counted as held back. Call
  // take_suppressed(now) first, so a summary of the last window comes before the first line of
  // the next.
  bool allow(Clock::time_point now);
  // The lines held back in a window that is over by `now` (then reset), else 0.
  std::size_t take_suppressed(Clock::time_point now) noexcept;
  // The lines held back so far, whether or not their window is over (then reset).
  std::size_t take_all() noexcept;

  Clock::duration window() const noexcept { return window_; }
  std::size_t burst() const noexcept { return burst_; }

 private:
  std::size_t burst_;
  Clock::duration window_;
  Clock::time_point window_start_{};
  bool started_ = false;
  std::size_t allowed_ = 0;     // lines let through in the current window
  std::size_t suppressed_ = 0;  // lines held back and not yet reported
};

}  // namespace imgcast::transport
