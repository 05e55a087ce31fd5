#include "transport/tcp/frame_header.h"

#include <algorithm>

#include "transport/byte_order.h"

namespace imgcast::transport::tcp {

namespace {
constexpr std::uint32_t kMagic = 0x46474D49;  // "IMGF" as little-endian bytes
}  // namespace

void FrameHeader::encode(std::span<std::byte, kBytes> out) const noexcept {
  std::fill(out.begin(), out.end(), std::byte{0});
  std::byte* p = out.data();
  store_le32(p, kMagic);
  p[4] = static_cast<std::byte>(type);
  store_le32(p + 8, region_id);
  store_le32(p + 12, length);
  store_le64(p + 16, write_key);
  store_le64(p + 24, offset);
  store_le32(p + 32, imm);
  store_le64(p + 40, notice);
}

std::optional<FrameHeader> FrameHeader::decode(std::span<const std::byte, kBytes> in,
                                               std::uint32_t max_control_bytes) noexcept {
  const std::byte* p = in.data();
  if (load_le32(p) != kMagic || p[5] != std::byte{0} || p[6] != std::byte{0} ||
      p[7] != std::byte{0} || load_le32(p + 36) != 0) {
    return std::nullopt;
  }
  FrameHeader h;
  h.region_id = load_le32(p + 8);
  h.length = load_le32(p + 12);
  h.write_key = load_le64(p + 16);
  h.offset = load_le64(p + 24);
  h.imm = load_le32(p + 32);
  h.notice = load_le64(p + 40);
  switch (static_cast<std::uint8_t>(p[4])) {
    case static_cast<std::uint8_t>(FrameType::kWrite):
      h.type = FrameType::kWrite;
      if (h.length == 0)
        return std::nullopt;
      return h;
    case static_cast<std::uint8_t>(FrameType::kControl):
      h.type = FrameType::kControl;
      if (h.length > max_control_bytes || h.region_id != 0 || h.write_key != 0 || h.offset != 0 ||
          h.imm != 0 || h.notice != 0) {
        return std::nullopt;
      }
      return h;
    default:
      return std::nullopt;
  }
}

}  // namespace imgcast::transport::tcp
