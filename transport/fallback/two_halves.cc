#include "transport/fallback/two_halves.h"

#include <fmt/format.h>

#include <algorithm>

#include "transport/byte_order.h"
#include "transport/error.h"

namespace imgcast::transport::fallback {

namespace {
constexpr std::uint32_t kMagic = 0x31424649;  // "IFB1" read as little-endian bytes

// Reads one u16-length-prefixed half at `at`; false when it does not fit in `bytes`.
bool take(std::span<const std::byte> bytes, std::size_t& at, std::vector<std::byte>& half) {
  if (bytes.size() - at < 2)
    return false;
  const std::size_t length = load_le16(bytes.data() + at);
  at += 2;
  if (bytes.size() - at < length)
    return false;
  half.assign(bytes.begin() + static_cast<std::ptrdiff_t>(at),
              bytes.begin() + static_cast<std::ptrdiff_t>(at + length));
  at += length;
  return true;
}
}  // namespace

std::vector<std::byte> pack(std::span<const std::byte> rdma, std::span<const std::byte> tcp) {
  // Each length travels as a u16: a longer half would be cut short on the wire, not refused.
  if (rdma.size() > 0xFFFF || tcp.size() > 0xFFFF) {
    throw Error(StatusCode::kInvalidArgument,
                fmt::format("an address or key half of {} bytes does not fit the packed format",
                            std::max(rdma.size(), tcp.size())));
  }
  std::vector<std::byte> out(kTwoHalvesOverhead + rdma.size() + tcp.size());
  std::byte* p = out.data();
  store_le32(p, kMagic);
  store_le16(p + 4, static_cast<std::uint16_t>(rdma.size()));
  std::copy(rdma.begin(), rdma.end(), p + 6);
  p += 6 + rdma.size();
  store_le16(p, static_cast<std::uint16_t>(tcp.size()));
  std::copy(tcp.begin(), tcp.end(), p + 2);
  return out;
}

std::optional<TwoHalves> unpack(std::span<const std::byte> bytes) {
  if (bytes.size() < kTwoHalvesOverhead || load_le32(bytes.data()) != kMagic)
    return std::nullopt;
  TwoHalves halves;
  std::size_t at = 4;
  if (!take(bytes, at, halves.rdma) || !take(bytes, at, halves.tcp) || at != bytes.size() ||
      halves.tcp.empty()) {
    return std::nullopt;
  }
  return halves;
}

}  // namespace imgcast::transport::fallback
