#include "transport/verbs/credit_ledger.h"

#include <algorithm>
#include <limits>

namespace imgcast::transport::verbs {

std::uint16_t CreditLedger::take_owed() noexcept {
  // The header field is 16 bits; what does not fit stays owed for the next message.
  const std::uint32_t n = std::min<std::uint32_t>(owed_, std::numeric_limits<std::uint16_t>::max());
  owed_ -= n;
  return static_cast<std::uint16_t>(n);
}

bool CreditLedger::on_credits_returned(std::uint32_t n) noexcept {
  if (n > limit_ - available_)
    return false;
  available_ += n;
  return true;
}

}  // namespace imgcast::transport::verbs
