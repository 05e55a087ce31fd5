#include "transport/verbs/rdma_wire.h"

#include <algorithm>

#include "transport/byte_order.h"

namespace imgcast::transport::verbs {

namespace {
void header(std::byte* p, MessageType type, std::uint8_t flags, std::uint16_t credits,
            std::uint32_t field) {
  p[0] = static_cast<std::byte>(type);
  p[1] = static_cast<std::byte>(flags);
  store_le16(p + 2, credits);
  store_le32(p + 4, field);
}
}  // namespace

std::size_t encode_notice(std::span<std::byte> out, std::uint16_t credits, std::uint32_t imm,
                          std::uint32_t length, std::uint64_t notice) {
  std::byte* p = out.data();
  header(p, MessageType::kNotice, 0, credits, imm);
  store_le32(p + 8, length);
  store_le32(p + 12, 0);
  store_le64(p + 16, notice);
  return WireMessage::kNoticeBytes;
}

std::size_t encode_control(std::span<std::byte> out, std::uint16_t credits, std::uint8_t flags,
                           std::span<const std::byte> fragment) {
  header(out.data(), MessageType::kControl, flags, credits,
         static_cast<std::uint32_t>(fragment.size()));
  std::copy(fragment.begin(), fragment.end(), out.data() + WireMessage::kHeaderBytes);
  return WireMessage::kHeaderBytes + fragment.size();
}

std::size_t encode_credit(std::span<std::byte> out, std::uint16_t credits) {
  header(out.data(), MessageType::kCredit, 0, credits, 0);
  return WireMessage::kHeaderBytes;
}

std::optional<WireMessage> decode_message(std::span<const std::byte> bytes,
                                          std::size_t max_fragment) {
  if (bytes.size() < WireMessage::kHeaderBytes)
    return std::nullopt;
  const std::byte* p = bytes.data();
  WireMessage m;
  const auto type = static_cast<std::uint8_t>(p[0]);
  m.flags = static_cast<std::uint8_t>(p[1]);
  m.credits = load_le16(p + 2);
  const std::uint32_t field = load_le32(p + 4);
  switch (type) {
    case static_cast<std::uint8_t>(MessageType::kNotice):
      if (m.flags != 0 || bytes.size() != WireMessage::kNoticeBytes || load_le32(p + 12) != 0)
        return std::nullopt;
      m.type = MessageType::kNotice;
      m.imm = field;
      m.length = load_le32(p + 8);
      m.notice = load_le64(p + 16);
      return m;
    case static_cast<std::uint8_t>(MessageType::kControl):
      // An empty fragment is only the whole of an empty message.
      if ((m.flags & ~(kFirstFragment | kLastFragment)) != 0 ||
          (field == 0 && m.flags != (kFirstFragment | kLastFragment)) || field > max_fragment ||
          bytes.size() != WireMessage::kHeaderBytes + field) {
        return std::nullopt;
      }
      m.type = MessageType::kControl;
      m.fragment = bytes.subspan(WireMessage::kHeaderBytes);
      return m;
    case static_cast<std::uint8_t>(MessageType::kCredit):
      if (m.flags != 0 || field != 0 || bytes.size() != WireMessage::kHeaderBytes)
        return std::nullopt;
      m.type = MessageType::kCredit;
      return m;
    default:
      return std::nullopt;
  }
}

}  // namespace imgcast::transport::verbs
