// ControlAssembler: rebuilds control messages from the fragments one peer SENDs (a control
// message may be up to Endpoint::kMaxControlBytes, a receive buffer holds a few KiB). RC
// delivers the fragments in order and one message's fragments are never interleaved with
// another's, so a message is simply kFirst .. kLast. Anything else is a protocol error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace imgcast::transport::verbs {

class ControlAssembler {
 public:
  explicit ControlAssembler(std::size_t max_message) : max_message_(max_message) {}

  enum class Result { kNeedMore, kComplete, kMalformed };
  // kComplete: take() returns the message. kMalformed: a fragment out of sequence (a kFirst
  // inside a message, a continuation without one) or a message longer than max_message; the
  // assembler is then unusable (the endpoint fails).
  Result add(std::uint8_t flags, std::span<const std::byte> fragment);
  std::vector<std::byte> take();
  // The bound for fragments added from now on (Endpoint::trust raises it); it grows as
  // fragments come, so nothing past what arrived is allocated.
  void set_max_message(std::size_t max_message) noexcept { max_message_ = max_message; }

 private:
  std::size_t max_message_;
  bool in_message_ = false;
  bool broken_ = false;
  std::vector<std::byte> buffer_;
};

// How many fragments a message of `size` bytes needs (an empty message still needs one).
// REQUIRES: max_fragment > 0.
constexpr std::size_t fragments_for(std::size_t size, std::size_t max_fragment) noexcept {
  return size == 0 ? 1 : (size + max_fragment - 1) / max_fragment;
}

}  // namespace imgcast::transport::verbs
