// The verbs backend's two-sided messages: what a SEND carries into one of the peer's pre-posted
// receive buffers. Every SEND starts with an 8-byte header that also returns receive credits
// (credit_ledger.h), so credits ride along with traffic in either direction.
//
// Protocol script of one write (imm = chunk index, notice = chunk digest), all on one RC QP:
//   sender                                   receiver
//   SEND  kNotice{imm, length, notice}  -->  recv CQE: queue the notice (FIFO)
//   RDMA_WRITE piece 1 .. n-1           -->  (no CQE: one-sided)
//   RDMA_WRITE_WITH_IMM piece n, imm    -->  recv CQE with imm: pop the notice, which must
//                                            carry the same imm -> WriteArrived
// Why the receiver may report WriteArrived at that CQE: an RC QP executes its messages at the
// responder in the order they were posted, and a responder generates the receive completion of
// WRITE_WITH_IMM only after that message's data is placed; the earlier pieces, being earlier
// messages on the same QP, are placed before it. The notice SEND went before the data, so it is
// already queued. Control messages are SENDs on the same QP, so one posted after a write arrives
// after its WriteArrived (the contract of Endpoint::send_control).
//
// Header, little-endian: u8 type | u8 flags | u16 credits returned | u32 field
//   kNotice   field = imm; body u32 length | u32 reserved (0) | u64 notice   (24 bytes total)
//   kControl  field = bytes of this fragment; flags kFirst/kLast; body = the fragment
//   kCredit   field = 0; no body (returns credits when there is no traffic to carry them)
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace imgcast::transport::verbs {

enum class MessageType : std::uint8_t { kNotice = 1, kControl = 2, kCredit = 3 };

inline constexpr std::uint8_t kFirstFragment = 1u << 0;
inline constexpr std::uint8_t kLastFragment = 1u << 1;

struct WireMessage {
  static constexpr std::size_t kHeaderBytes = 8;
  static constexpr std::size_t kNoticeBytes = kHeaderBytes + 16;

  MessageType type = MessageType::kCredit;
  std::uint8_t flags = 0;
  std::uint16_t credits = 0;
  // kNotice
  std::uint32_t imm = 0;
  std::uint32_t length = 0;
  std::uint64_t notice = 0;
  // kControl: points into the decoded buffer
  std::span<const std::byte> fragment;

  bool operator==(const WireMessage& o) const {
    return type == o.type && flags == o.flags && credits == o.credits && imm == o.imm &&
           length == o.length && notice == o.notice && fragment.size() == o.fragment.size() &&
           std::equal(fragment.begin(), fragment.end(), o.fragment.begin());
  }
};

// Each returns the bytes written. REQUIRES: `out` is large enough (kNoticeBytes,
// kHeaderBytes + fragment.size(), kHeaderBytes).
std::size_t encode_notice(std::span<std::byte> out, std::uint16_t credits, std::uint32_t imm,
                          std::uint32_t length, std::uint64_t notice);
std::size_t encode_control(std::span<std::byte> out, std::uint16_t credits, std::uint8_t flags,
                           std::span<const std::byte> fragment);
std::size_t encode_credit(std::span<std::byte> out, std::uint16_t credits);

// nullopt for anything malformed: short, unknown type, unknown or misplaced flags, sizes that
// do not match the type, a fragment longer than `max_fragment`, an empty fragment that is not a
// whole (empty) message, a non-zero reserved field. The fragment span aliases `bytes`.
std::optional<WireMessage> decode_message(std::span<const std::byte> bytes,
                                          std::size_t max_fragment);

}  // namespace imgcast::transport::verbs
