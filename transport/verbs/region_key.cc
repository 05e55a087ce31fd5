#include "transport/verbs/region_key.h"

#include "transport/byte_order.h"

namespace imgcast::transport::verbs {

std::uint64_t segments_for(std::uint64_t length, std::uint64_t segment_bytes) noexcept {
  return length / segment_bytes + (length % segment_bytes != 0 ? 1 : 0);
}

std::uint64_t choose_segment_bytes(std::uint64_t length, std::uint64_t preferred) noexcept {
  constexpr std::uint64_t kPage = RegionKey::kMinSegmentBytes;
  auto round_up = [](std::uint64_t v) { return v / kPage * kPage + (v % kPage != 0 ? kPage : 0); };
  std::uint64_t segment = preferred < kPage ? kPage : round_up(preferred);
  if (segments_for(length, segment) > RegionKey::kMaxSegments) {
    segment = round_up(segments_for(length, RegionKey::kMaxSegments));
  }
  return segment;
}

std::vector<std::byte> RegionKey::encode() const {
  std::vector<std::byte> out(kFixedBytes + 4 * keys.size());
  std::byte* p = out.data();
  store_le16(p, kVersion);
  store_le16(p + 2, static_cast<std::uint16_t>(keys.size()));
  store_le32(p + 4, 0);
  store_le64(p + 8, segment_bytes);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    store_le32(p + kFixedBytes + 4 * i, keys[i]);
  }
  return out;
}

std::optional<RegionKey> RegionKey::decode(std::span<const std::byte> bytes,
                                           std::uint64_t region_length) {
  if (bytes.size() < kFixedBytes)
    return std::nullopt;
  const std::byte* p = bytes.data();
  const std::size_t count = load_le16(p + 2);
  if (load_le16(p) != kVersion || load_le32(p + 4) != 0 || count > kMaxSegments ||
      bytes.size() != kFixedBytes + 4 * count) {
    return std::nullopt;
  }
  RegionKey key;
  key.segment_bytes = load_le64(p + 8);
  if (key.segment_bytes < kMinSegmentBytes ||
      segments_for(region_length, key.segment_bytes) != count) {
    return std::nullopt;
  }
  key.keys.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    key.keys[i] = load_le32(p + kFixedBytes + 4 * i);
  }
  return key;
}

}  // namespace imgcast::transport::verbs
