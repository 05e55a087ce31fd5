#include "cli/progress_line.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <ostream>

namespace imgcast::cli {

std::string progress_text(const replicator::ProgressSnapshot& s) {
  const std::size_t nodes = s.bytes_verified.size();
  if (!s.setup_step.empty()) {
    // Nothing moves yet: say what the setup waits for, so a slow launcher is not silence.
    std::string text = fmt::format("[setup {:.1f}s] {}/{} agents {}", s.setup_seconds,
                                   s.setup_reached, nodes > 0 ? nodes - 1 : 0, s.setup_step);
    if (s.failed > 0) {
      text += fmt::format(", {} failed", s.failed);
    }
    return text;
  }
  std::uint64_t verified = 0;
  for (std::uint64_t b : s.bytes_verified)
    verified += b;
  const double total = static_cast<double>(s.image_bytes) * static_cast<double>(nodes);
  const double percent = total > 0 ? 100.0 * static_cast<double>(verified) / total : 100.0;
  const double elapsed = std::max(s.elapsed_seconds, 1e-3);
  // The slowest host still receiving sets the ETA.
  std::size_t slowest = nodes;
  for (std::size_t i = 0; i < nodes; ++i) {
    if (s.bytes_verified[i] < s.image_bytes &&
        (slowest == nodes || s.bytes_verified[i] < s.bytes_verified[slowest])) {
      slowest = i;
    }
  }
  std::string text = fmt::format("[{:3.0f}%] {:.2f} of {:.2f} GB, {:.0f} MB/s aggregate", percent,
                                 verified / 1e9, total / 1e9, verified / 1e6 / elapsed);
  if (slowest != nodes) {
    const double rate = s.bytes_verified[slowest] / elapsed;
    const std::string eta =
        rate > 0 ? fmt::format("{:.0f}s", (s.image_bytes - s.bytes_verified[slowest]) / rate)
                 : std::string("?");
    text += fmt::format(", slowest {:.0f} MB/s ({}), ETA {}", rate / 1e6, s.hosts[slowest], eta);
  }
  text += fmt::format(", {}/{} hosts done", s.done, nodes);
  if (s.failed > 0) {
    text += fmt::format(", {} failed", s.failed);
  }
  return text;
}

void ProgressLine::update(const replicator::ProgressSnapshot& snapshot) {
  out_ << "\r\033[K" << progress_text(snapshot) << std::flush;
  shown_ = true;
}

void ProgressLine::clear() {
  if (shown_) {
    out_ << "\r\033[K" << std::flush;
    shown_ = false;
  }
}

}  // namespace imgcast::cli
