// Authentication: only processes that hold the job key may join a transfer. The root draws a
// 256-bit key from the CSPRNG and hands it to each agent on standard input (never argv, never a
// log). Every channel opens with a mutual challenge-response before any plan, region descriptor
// or image byte moves:
//
//   initiator -> Hello{version, channel, rank, job id, nonce_i}
//   responder -> Challenge{nonce_r,
//                          HMAC(key, "imgcast-responder" | channel | rank | job | nonce_i | nonce_r)}
//   initiator -> Proof{HMAC(key, "imgcast-initiator" | channel | rank | job | nonce_r | nonce_i)}
//   initiator -> its introduction (Join on control, Region on data)
//
// The initiators are an agent on its control channel and a child on its data channel; the
// responder side is Admission (admission.h), the one path both channels' listeners use.
//
// Both sides contribute a fresh nonce, so a recorded transcript replays into a MAC over a nonce
// the responder never sent; the role label stops a reflected MAC; the job id and channel bind the
// proof to this transfer. MACs are compared in constant time.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "replicator/protocol/message_seal.h"
#include "replicator/protocol/messages.h"

namespace imgcast::replicator {

struct JobKey {
  std::array<std::byte, 32> bytes{};

  static JobKey random();
  // 64 hex digits; nullopt for anything else.
  static std::optional<JobKey> from_hex(std::string_view hex);
  std::string to_hex() const;
};

JobId random_job_id();
Nonce random_nonce();
std::string to_hex(std::span<const std::byte> bytes);
// Fills `out` from exactly 2 * out.size() hex digits; false (out unspecified) otherwise.
bool parse_hex(std::string_view hex, std::span<std::byte> out) noexcept;

// The initiating side of a handshake (an agent on its control channel, a child on its data
// channel).
class InitiatorHandshake {
 public:
  InitiatorHandshake(const JobKey& key, const JobId& job, Channel channel, std::uint32_t rank);
  const Hello& hello() const noexcept { return hello_; }
  // nullopt when the responder's MAC is wrong: the peer does not hold the key.
  std::optional<Proof> answer(const Challenge& challenge) const;
  // The seal of every later message on this channel. REQUIRES: answer(challenge) succeeded.
  MessageSeal seal(const Challenge& challenge) const;

 private:
  const JobKey& key_;
  Hello hello_;
};

// The responding side (the root for control, a parent for data).
class ResponderHandshake {
 public:
  ResponderHandshake(const JobKey& key, const JobId& job, Channel channel);
  // nullopt with `why` set when the Hello is for another job, channel or version.
  std::optional<Challenge> challenge(const Hello& hello, std::string& why);
  // True when the initiator proved it holds the key. REQUIRES: challenge() succeeded.
  bool verify(const Proof& proof) const;
  // The seal of every later message on this channel. REQUIRES: verify() succeeded.
  MessageSeal seal() const;
  std::uint32_t peer_rank() const noexcept { return peer_rank_; }

 private:
  const JobKey& key_;
  JobId job_;
  Channel channel_;
  Nonce initiator_nonce_{};
  Nonce responder_nonce_{};
  std::uint32_t peer_rank_ = 0;
  bool challenged_ = false;
};

}  // namespace imgcast::replicator
