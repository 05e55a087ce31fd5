// LinkMeter: times the root's link during setup, so that the plan's chunk size and topology come
// from a measured speed instead of a guess (--link-mbit still overrides it).
//
// While the other agents start and join, the root sends up to max_bursts filler messages of
// burst_bytes (Burst, messages.h) on its control channel to the first agent that joined, keeping
// `window` of them in flight; the agent answers each one (BurstAck) as it arrives whole. The first
// answer carries the connection's warm-up (a round trip, TCP's slow start); from then on the pipe
// is full and answers come at the link's pace, so
//     beta = (answers - 1) * burst_bytes / (t_last_answer - t_first_answer).
// It stops once the answers span min_span and number min_answers (enough to time a slow link
// without spending long on it: about 50 ms at 200 Mbit/s), or when every burst is answered (a fast
// link: 8 MiB, 7 ms at 10 Gbit/s). It gives up after give_up without that: the plan then keeps
// its default speed and says so.
//
// The bursts are sealed like every control message (message_seal.h): HMAC-SHA256 on both ends,
// and copies, cost about a nanosecond a byte. On a fast link that, not the link, sets the pace, and
// the figure would be a floor, not the speed: a plan made on it would pick chunks too small. So the
// caller also says how much CPU time its thread spent sealing and sending them; past half of it the
// figure is a lower bound only (cpu_bound()), and the caller keeps its default unless that is
// lower.
//
// Pure bookkeeping (the caller sends, receives and reads the clock), so it is tested with made-up
// times.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace imgcast::replicator {

class LinkMeter {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::size_t burst_bytes = 64u << 10;
    // Bursts in flight: 8 at first, one more per answer (doubling each round trip, as TCP's slow
    // start does) up to max_window. A busy host answers late (a wake-up can take milliseconds
    // on a loaded node), and a fixed window would then time the round trip, not the link.
    int window = 8;
    int max_window = 64;
    int max_bursts = 128;  // 8 MiB at most: 7 ms at 10 Gbit/s
    int min_answers = 8;
    std::chrono::microseconds min_span{20'000};
    std::chrono::milliseconds give_up{1'000};
  };

  LinkMeter(const Options& options, Clock::time_point now);

  // The next burst to send now, or nullopt: the window is full, or every burst is sent, or the
  // measurement is over.
  std::optional<std::uint32_t> next_to_send();
  // The answer to burst `index` arrived at `now`. Answers come in order (one reliable channel); an
  // index out of order or never sent is ignored and returns false.
  bool answered(std::uint32_t index, Clock::time_point now);
  // Measured, or given up at `now`.
  bool done(Clock::time_point now) const;
  // The link's rate, once done with enough answers; nullopt when it gave up.
  std::optional<double> bytes_per_second() const;
  // The sender's thread spent `cpu` sealing and sending bursts over the measurement's elapsed():
  // busy with them more than half the time, it set the pace itself.
  bool cpu_bound(std::chrono::nanoseconds cpu, Clock::time_point now) const;
  // How long the measurement took (start to its last answer, or to now while running).
  std::chrono::microseconds elapsed(Clock::time_point now) const;
  std::size_t burst_bytes() const noexcept { return options_.burst_bytes; }

 private:
  bool measured() const;

  Options options_;
  Clock::time_point start_;
  Clock::time_point first_answer_{};
  Clock::time_point last_answer_{};
  std::uint32_t window_;
  std::uint32_t sent_ = 0;
  std::uint32_t answers_ = 0;
};

}  // namespace imgcast::replicator
