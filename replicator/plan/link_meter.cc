#include "replicator/plan/link_meter.h"

namespace imgcast::replicator {

LinkMeter::LinkMeter(const Options& options, Clock::time_point now)
    : options_(options), start_(now), window_(static_cast<std::uint32_t>(options.window)) {}

std::optional<std::uint32_t> LinkMeter::next_to_send() {
  if (measured() || sent_ >= static_cast<std::uint32_t>(options_.max_bursts) ||
      sent_ - answers_ >= window_) {
    return std::nullopt;
  }
  return sent_++;
}

bool LinkMeter::answered(std::uint32_t index, Clock::time_point now) {
  if (index != answers_ || index >= sent_) {
    return false;
  }
  if (answers_ == 0) {
    first_answer_ = now;
  }
  last_answer_ = now;
  ++answers_;
  if (window_ < static_cast<std::uint32_t>(options_.max_window)) {
    ++window_;
  }
  return true;
}

bool LinkMeter::measured() const {
  if (answers_ < 2) {
    return false;
  }
  const bool all = answers_ >= static_cast<std::uint32_t>(options_.max_bursts);
  const bool enough = answers_ >= static_cast<std::uint32_t>(options_.min_answers) &&
                      last_answer_ - first_answer_ >= options_.min_span;
  return all || enough;
}

bool LinkMeter::done(Clock::time_point now) const {
  return measured() || now - start_ >= options_.give_up;
}

std::optional<double> LinkMeter::bytes_per_second() const {
  if (!measured()) {
    return std::nullopt;
  }
  const double seconds = std::chrono::duration<double>(last_answer_ - first_answer_).count();
  if (seconds <= 0) {
    return std::nullopt;  // a clock that did not move: nothing to divide by
  }
  return static_cast<double>(answers_ - 1) * static_cast<double>(options_.burst_bytes) / seconds;
}

bool LinkMeter::cpu_bound(std::chrono::nanoseconds cpu, Clock::time_point now) const {
  return cpu * 2 >= elapsed(now);
}

std::chrono::microseconds LinkMeter::elapsed(Clock::time_point now) const {
  const auto end = measured() ? last_answer_ : now;
  return std::chrono::duration_cast<std::chrono::microseconds>(end - start_);
}

}  // namespace imgcast::replicator
