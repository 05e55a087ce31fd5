#include "transport/verbs/control_assembler.h"

#include "transport/verbs/rdma_wire.h"

namespace imgcast::transport::verbs {

ControlAssembler::Result ControlAssembler::add(std::uint8_t flags,
                                               std::span<const std::byte> fragment) {
  const bool first = (flags & kFirstFragment) != 0;
  const std::size_t before = first ? 0 : buffer_.size();
  if (broken_ || first == in_message_ || before + fragment.size() > max_message_) {
    broken_ = true;
    return Result::kMalformed;
  }
  if (first) {
    buffer_.clear();
    in_message_ = true;
  }
  buffer_.insert(buffer_.end(), fragment.begin(), fragment.end());
  if ((flags & kLastFragment) == 0)
    return Result::kNeedMore;
  in_message_ = false;
  return Result::kComplete;
}

std::vector<std::byte> ControlAssembler::take() {
  std::vector<std::byte> out;
  out.swap(buffer_);
  return out;
}

}  // namespace imgcast::transport::verbs
