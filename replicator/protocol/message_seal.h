// MessageSeal: integrity for every message after a channel's handshake. The handshake proves
// who is at the other end once; without a seal, anyone on the network path could afterwards
// change a Plan, a Finish digest, a Reparent address or an Abort in flight. Both ends derive a
// session key from the job key and the two fresh nonces of their handshake:
//
//   session = HMAC-SHA256(job key, "imgcast-session" | channel | rank | job | nonce_i | nonce_r)
//
// and every later message travels as its encoding followed by a 16-byte tag:
//
//   tag = HMAC-SHA256(session, direction | sequence | body)[0, 16)
//
// direction is 1 from the initiator, 2 from the responder (a message cannot be reflected back);
// sequence counts the messages sent in that direction from 0 and is not sent (the channel is
// reliable and ordered): a dropped, replayed or reordered message fails the next check. A new
// connection has new nonces, so nothing recorded from another connection opens here.
//
// Not secrecy: the bodies stay readable on the wire (nothing in them is secret but region keys,
// which are bound to their connection at the transport; docs/security.md).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "replicator/protocol/messages.h"

namespace imgcast::replicator {

struct JobKey;

class MessageSeal {
 public:
  enum class Side : std::uint8_t { kInitiator = 1, kResponder = 2 };
  static constexpr std::size_t kTagBytes = 16;

  MessageSeal(const JobKey& key, Channel channel, std::uint32_t rank, const JobId& job,
              const Nonce& initiator_nonce, const Nonce& responder_nonce, Side self);

  // The message's encoding and its tag, ready for send_control. Counts it as sent.
  std::vector<std::byte> seal(const Message& message);
  // The message, when its tag is the next one this side expects from the other; nullopt for a
  // wrong tag (forged, altered, replayed, reordered) or a body that does not decode.
  std::optional<Message> open(std::span<const std::byte> sealed);

 private:
  using Tag = std::array<std::byte, kTagBytes>;
  Tag tag(Side from, std::uint64_t sequence, std::span<const std::byte> body) const;

  std::array<std::byte, 32> session_key_{};
  Side self_;
  std::uint64_t sent_ = 0;
  std::uint64_t received_ = 0;
};

}  // namespace imgcast::replicator
