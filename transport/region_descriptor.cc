#include "transport/region_descriptor.h"

#include "transport/byte_order.h"

namespace imgcast::transport {

namespace {
constexpr std::uint32_t kMagic = 0x31445249;  // "IRD1" read as little-endian bytes
}  // namespace

std::vector<std::byte> RegionDescriptor::encode() const {
  std::vector<std::byte> out(kFixedBytes + key.size());
  std::byte* p = out.data();
  store_le32(p, kMagic);
  p[4] = static_cast<std::byte>(kind);
  store_le32(p + 8, region_id);
  store_le64(p + 12, base);
  store_le64(p + 20, length);
  store_le16(p + 28, static_cast<std::uint16_t>(key.size()));
  std::copy(key.begin(), key.end(), p + kFixedBytes);
  return out;
}

std::optional<RegionDescriptor> RegionDescriptor::decode(std::span<const std::byte> bytes) {
  if (bytes.size() < kFixedBytes)
    return std::nullopt;
  const std::byte* p = bytes.data();
  if (load_le32(p) != kMagic)
    return std::nullopt;
  // Reserved bytes must be zero: one byte string per descriptor (found by fuzz_region_descriptor).
  if (p[5] != std::byte{0} || p[6] != std::byte{0} || p[7] != std::byte{0})
    return std::nullopt;
  const auto kind_byte = static_cast<std::uint8_t>(p[4]);
  if (kind_byte < static_cast<std::uint8_t>(Kind::kTcp) ||
      kind_byte > static_cast<std::uint8_t>(Kind::kVerbs)) {
    return std::nullopt;
  }
  const std::size_t key_length = load_le16(p + 28);
  if (key_length > kMaxKeyBytes || bytes.size() != kFixedBytes + key_length)
    return std::nullopt;
  RegionDescriptor d;
  d.kind = static_cast<Kind>(kind_byte);
  d.region_id = load_le32(p + 8);
  d.base = load_le64(p + 12);
  d.length = load_le64(p + 20);
  d.key.assign(p + kFixedBytes, p + kFixedBytes + key_length);
  return d;
}

}  // namespace imgcast::transport
