#include "transport/verbs/connect_params.h"

#include <algorithm>

#include "transport/byte_order.h"

namespace imgcast::transport::verbs {

namespace {
constexpr std::uint32_t kMagic = 0x31425649;  // "IVB1" as little-endian bytes
constexpr std::uint16_t kVersion = 1;
}  // namespace

std::vector<std::byte> ConnectParams::encode() const {
  std::vector<std::byte> out(kBytes);
  std::byte* p = out.data();
  store_le32(p, kMagic);
  store_le16(p + 4, kVersion);
  store_le16(p + 6, 0);
  store_le32(p + 8, receive_depth);
  store_le32(p + 12, receive_buffer_bytes);
  return out;
}

std::optional<ConnectParams> ConnectParams::decode(std::span<const std::byte> bytes) {
  if (bytes.size() < kBytes)
    return std::nullopt;
  const std::byte* p = bytes.data();
  if (load_le32(p) != kMagic || load_le16(p + 4) != kVersion || load_le16(p + 6) != 0)
    return std::nullopt;
  if (!std::all_of(bytes.begin() + kBytes, bytes.end(),
                   [](std::byte b) { return b == std::byte{0}; }))
    return std::nullopt;
  ConnectParams params;
  params.receive_depth = load_le32(p + 8);
  params.receive_buffer_bytes = load_le32(p + 12);
  if (params.receive_depth < kMinReceiveDepth || params.receive_depth > kMaxReceiveDepth ||
      params.receive_buffer_bytes < kMinBufferBytes ||
      params.receive_buffer_bytes > kMaxBufferBytes) {
    return std::nullopt;
  }
  return params;
}

}  // namespace imgcast::transport::verbs
