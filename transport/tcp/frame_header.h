// FrameHeader: the 48-byte header in front of everything the TCP backend sends. Pure code.
//
//   offset  size  field
//        0     4  magic "IMGF"
//        4     1  type: 1 write, 2 control
//        5     3  reserved, zero
//        8     4  region id          (write; 0 for control)
//       12     4  length             (write: payload bytes, > 0; control: <= kMaxControlBytes)
//       16     8  write key          (write: the target region's key; 0 for control)
//       24     8  offset             (write: where the payload goes in the region)
//       32     4  imm                (write: delivered to the receiver)
//       36     4  reserved, zero
//       40     8  notice             (write: delivered to the receiver)
//
// Script: a header is followed by exactly `length` payload bytes, then the next header. The
// receiver reads the header, checks it (decode below, then the region, key and range against
// its own registry), and only then receives the payload straight into the region.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace imgcast::transport::tcp {

enum class FrameType : std::uint8_t { kWrite = 1, kControl = 2 };

struct FrameHeader {
  static constexpr std::size_t kBytes = 48;

  FrameType type = FrameType::kWrite;
  std::uint32_t region_id = 0;
  std::uint32_t length = 0;
  std::uint64_t write_key = 0;
  std::uint64_t offset = 0;
  std::uint32_t imm = 0;
  std::uint64_t notice = 0;

  void encode(std::span<std::byte, kBytes> out) const noexcept;
  // nullopt for bad magic, unknown type, non-zero reserved bytes, a write of length 0, a control
  // message over max_control_bytes, or control frames with write fields set.
  static std::optional<FrameHeader> decode(std::span<const std::byte, kBytes> in,
                                           std::uint32_t max_control_bytes) noexcept;

  bool operator==(const FrameHeader&) const = default;
};

}  // namespace imgcast::transport::tcp
