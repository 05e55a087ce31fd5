// RegionDescriptor: what a receiver tells its sender so the sender can write into a registered
// region: an id, the remote base address (0 for TCP), the length, and a backend key (a verbs
// rkey, a packed UCX rkey, or TCP's random 64-bit write key). It travels inside control messages,
// so decode() treats its bytes as hostile: every length is bounded and checked.
//
// Wire form, little-endian, fixed width:
//   u32 magic 'IRD1' | u8 kind | u8 reserved[3] | u32 region_id | u64 base | u64 length
//   | u16 key_length (<= kMaxKeyBytes) | key bytes
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "transport/kind.h"

namespace imgcast::transport {

struct RegionDescriptor {
  static constexpr std::size_t kMaxKeyBytes = 4096;
  static constexpr std::size_t kFixedBytes = 4 + 1 + 3 + 4 + 8 + 8 + 2;

  Kind kind = Kind::kTcp;
  std::uint32_t region_id = 0;
  std::uint64_t base = 0;
  std::uint64_t length = 0;
  std::vector<std::byte> key;

  std::vector<std::byte> encode() const;
  // Returns nullopt for anything malformed: short input, bad magic, unknown kind, non-zero
  // reserved bytes, key too long,
  // trailing bytes.
  static std::optional<RegionDescriptor> decode(std::span<const std::byte> bytes);

  bool operator==(const RegionDescriptor&) const = default;
};

}  // namespace imgcast::transport
