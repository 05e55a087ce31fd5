// RegionKey: the verbs backend's bytes inside RegionDescriptor::key. A receiver registers a large
// region as several MRs of `segment_bytes` each (the last one shorter), because one ibv_reg_mr
// of many GiB can fail on devices with a smaller max_mr_size and pins everything in one call.
// The key lists one rkey per segment; segment i covers [i * segment_bytes, +segment_bytes).
// The same layout describes the lkeys of a local region, so the write planner treats both alike.
//
// Wire form, little-endian, fixed width (the descriptor travels in control messages from a
// peer, so decode() treats it as hostile and checks every field):
//   u16 version (1) | u16 count | u32 reserved (0) | u64 segment_bytes | u32 rkey[count]
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace imgcast::transport::verbs {

struct RegionKey {
  static constexpr std::uint16_t kVersion = 1;
  static constexpr std::size_t kFixedBytes = 16;
  // What fits in RegionDescriptor::kMaxKeyBytes (4096).
  static constexpr std::size_t kMaxSegments = (4096 - kFixedBytes) / 4;
  // Smaller segments would only multiply MRs; anything this small is a malformed key.
  static constexpr std::uint64_t kMinSegmentBytes = 4096;

  std::uint64_t segment_bytes = 0;
  std::vector<std::uint32_t> keys;  // one per segment

  std::vector<std::byte> encode() const;
  // nullopt unless the bytes are exactly one well-formed key whose segments cover a region of
  // `region_length` bytes: right size, version, zero reserved bits, segment_bytes >=
  // kMinSegmentBytes, count == segments_for(region_length, segment_bytes) <= kMaxSegments.
  static std::optional<RegionKey> decode(std::span<const std::byte> bytes,
                                         std::uint64_t region_length);

  bool operator==(const RegionKey&) const = default;
};

// ceil(length / segment_bytes) without overflow. REQUIRES: segment_bytes > 0.
std::uint64_t segments_for(std::uint64_t length, std::uint64_t segment_bytes) noexcept;

// The segment size to register `length` bytes with: `preferred` (rounded up to a 4 KiB multiple)
// unless that needs more than kMaxSegments MRs, then the smallest 4 KiB multiple that fits.
std::uint64_t choose_segment_bytes(std::uint64_t length, std::uint64_t preferred) noexcept;

}  // namespace imgcast::transport::verbs
