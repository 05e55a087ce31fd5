#include "transport/log_rate_limit.h"

namespace imgcast::transport {

LogRateLimit::LogRateLimit(std::size_t burst, Clock::duration window) noexcept
    : burst_(burst), window_(window) {}

bool LogRateLimit::allow(Clock::time_point now) {
  // A window opens with the first line after the last one closed, so a quiet node logs its next
  // line at once instead of waiting for a fixed tick.
  if (!started_ || now - window_start_ >= window_) {
    started_ = true;
    window_start_ = now;
    allowed_ = 0;
  }
  if (allowed_ < burst_) {
    ++allowed_;
    return true;
  }
  ++suppressed_;
  return false;
}

std::size_t LogRateLimit::take_suppressed(Clock::time_point now) noexcept {
  if (suppressed_ == 0 || now - window_start_ < window_) {
    return 0;
  }
  return take_all();
}

std::size_t LogRateLimit::take_all() noexcept {
  const std::size_t count = suppressed_;
  suppressed_ = 0;
  return count;
}

}  // namespace imgcast::transport
