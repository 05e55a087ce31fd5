#include "replicator/protocol/message_seal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <stdexcept>

#include "replicator/protocol/auth.h"
#include "replicator/protocol/byte_codec.h"

namespace imgcast::replicator {

namespace {

constexpr std::string_view kSessionLabel = "imgcast-session";

std::array<std::byte, 32> hmac_sha256(std::span<const std::byte> key,
                                      std::span<const std::byte> data) {
  std::array<std::byte, 32> out{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(),
           reinterpret_cast<unsigned char*>(out.data()), &length) == nullptr ||
      length != out.size()) {
    throw std::runtime_error("HMAC-SHA256 failed (OpenSSL)");
  }
  return out;
}

}  // namespace

MessageSeal::MessageSeal(const JobKey& key, Channel channel, std::uint32_t rank, const JobId& job,
                         const Nonce& initiator_nonce, const Nonce& responder_nonce, Side self)
    : self_(self) {
  ByteWriter context;
  context.str(kSessionLabel).u8(static_cast<std::uint8_t>(channel)).u32(rank);
  context.raw(job).raw(initiator_nonce).raw(responder_nonce);
  session_key_ = hmac_sha256(key.bytes, context.bytes());
}

MessageSeal::Tag MessageSeal::tag(Side from, std::uint64_t sequence,
                                  std::span<const std::byte> body) const {
  // Control messages are small and few (a handful per node and second), so one copy into the
  // MAC's input costs nothing worth a streaming HMAC.
  ByteWriter input;
  input.u8(static_cast<std::uint8_t>(from)).u64(sequence).raw(body);
  const std::array<std::byte, 32> full = hmac_sha256(session_key_, input.bytes());
  Tag out{};
  std::memcpy(out.data(), full.data(), out.size());
  return out;
}

std::vector<std::byte> MessageSeal::seal(const Message& message) {
  std::vector<std::byte> bytes = encode(message);
  const Tag t = tag(self_, sent_++, bytes);
  bytes.insert(bytes.end(), t.begin(), t.end());
  return bytes;
}

std::optional<Message> MessageSeal::open(std::span<const std::byte> sealed) {
  if (sealed.size() < kTagBytes) {
    return std::nullopt;
  }
  const auto body = sealed.first(sealed.size() - kTagBytes);
  const Side peer = self_ == Side::kInitiator ? Side::kResponder : Side::kInitiator;
  const Tag expected = tag(peer, received_, body);
  if (CRYPTO_memcmp(expected.data(), sealed.data() + body.size(), kTagBytes) != 0) {
    return std::nullopt;
  }
  std::optional<Message> message = decode(body);
  if (message) {
    ++received_;  // only a message that opened moves the sequence on
  }
  return message;
}

}  // namespace imgcast::replicator
