#include "replicator/protocol/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>

#include "replicator/protocol/byte_codec.h"

namespace imgcast::replicator {

namespace {

template <std::size_t N>
std::array<std::byte, N> random_bytes() {
  std::array<std::byte, N> out{};
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), N) != 1) {
    throw std::runtime_error("the system random generator failed (OpenSSL RAND_bytes)");
  }
  return out;
}

Mac compute_mac(const JobKey& key, std::string_view role, Channel channel, std::uint32_t rank,
                const JobId& job, const Nonce& first, const Nonce& second) {
  ByteWriter transcript;
  transcript.str(role).u8(static_cast<std::uint8_t>(channel)).u32(rank);
  transcript.raw(job).raw(first).raw(second);
  const auto& bytes = transcript.bytes();
  Mac mac{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.bytes.data(), static_cast<int>(key.bytes.size()),
           reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
           reinterpret_cast<unsigned char*>(mac.data()), &length) == nullptr ||
      length != mac.size()) {
    throw std::runtime_error("HMAC-SHA256 failed (OpenSSL)");
  }
  return mac;
}

bool equal_in_constant_time(const Mac& a, const Mac& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

constexpr std::string_view kResponderRole = "imgcast-responder";
constexpr std::string_view kInitiatorRole = "imgcast-initiator";

}  // namespace

JobKey JobKey::random() { return JobKey{random_bytes<32>()}; }

std::optional<JobKey> JobKey::from_hex(std::string_view hex) {
  JobKey key;
  if (!parse_hex(hex, key.bytes)) {
    return std::nullopt;
  }
  return key;
}

bool parse_hex(std::string_view hex, std::span<std::byte> out) noexcept {
  if (hex.size() != out.size() * 2) {
    return false;
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out[i] = static_cast<std::byte>(hi * 16 + lo);
  }
  return true;
}

std::string to_hex(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::byte b : bytes) {
    const auto v = static_cast<unsigned>(b);
    out.push_back(kDigits[v >> 4]);
    out.push_back(kDigits[v & 15]);
  }
  return out;
}

std::string JobKey::to_hex() const { return replicator::to_hex(bytes); }

JobId random_job_id() { return random_bytes<16>(); }
Nonce random_nonce() { return random_bytes<32>(); }

InitiatorHandshake::InitiatorHandshake(const JobKey& key, const JobId& job, Channel channel,
                                       std::uint32_t rank)
    : key_(key) {
  hello_.channel = channel;
  hello_.rank = rank;
  hello_.job_id = job;
  hello_.nonce = random_nonce();
}

std::optional<Proof> InitiatorHandshake::answer(const Challenge& challenge) const {
  const Mac expected = compute_mac(key_, kResponderRole, hello_.channel, hello_.rank, hello_.job_id,
                                   hello_.nonce, challenge.nonce);
  if (!equal_in_constant_time(expected, challenge.mac)) {
    return std::nullopt;
  }
  return Proof{compute_mac(key_, kInitiatorRole, hello_.channel, hello_.rank, hello_.job_id,
                           challenge.nonce, hello_.nonce)};
}

MessageSeal InitiatorHandshake::seal(const Challenge& challenge) const {
  return MessageSeal(key_, hello_.channel, hello_.rank, hello_.job_id, hello_.nonce,
                     challenge.nonce, MessageSeal::Side::kInitiator);
}

ResponderHandshake::ResponderHandshake(const JobKey& key, const JobId& job, Channel channel)
    : key_(key), job_(job), channel_(channel) {}

std::optional<Challenge> ResponderHandshake::challenge(const Hello& hello, std::string& why) {
  if (hello.version != kProtocolVersion) {
    why = "speaks protocol version " + std::to_string(hello.version) + ", this imgcast speaks " +
          std::to_string(kProtocolVersion) + ": install the same imgcast on every node";
    return std::nullopt;
  }
  if (hello.channel != channel_) {
    why = "opened the wrong kind of channel";
    return std::nullopt;
  }
  // Not secret, so an ordinary compare is fine; a wrong job id is refused before any MAC work.
  if (hello.job_id != job_) {
    why = "belongs to another job";
    return std::nullopt;
  }
  initiator_nonce_ = hello.nonce;
  responder_nonce_ = random_nonce();
  peer_rank_ = hello.rank;
  challenged_ = true;
  return Challenge{responder_nonce_, compute_mac(key_, kResponderRole, channel_, peer_rank_, job_,
                                                 initiator_nonce_, responder_nonce_)};
}

bool ResponderHandshake::verify(const Proof& proof) const {
  if (!challenged_) {
    return false;
  }
  const Mac expected = compute_mac(key_, kInitiatorRole, channel_, peer_rank_, job_,
                                   responder_nonce_, initiator_nonce_);
  return equal_in_constant_time(expected, proof.mac);
}

MessageSeal ResponderHandshake::seal() const {
  return MessageSeal(key_, channel_, peer_rank_, job_, initiator_nonce_, responder_nonce_,
                     MessageSeal::Side::kResponder);
}

}  // namespace imgcast::replicator
