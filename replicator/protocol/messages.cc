#include "replicator/protocol/messages.h"

#include <type_traits>

#include "replicator/protocol/byte_codec.h"

namespace imgcast::replicator {

namespace {

// Wire type tags; the order of the variant is not the wire format.
enum class Tag : std::uint8_t {
  kHello = 1,
  kChallenge = 2,
  kProof = 3,
  kJoin = 4,
  kPlan = 5,
  kReady = 6,
  kFailed = 7,
  kFinish = 8,
  kResult = 9,
  kAbort = 10,
  kBye = 11,
  kRegion = 12,
  kProgress = 13,
  kProbe = 14,
  kProbed = 15,
  kSkip = 16,
  kOrphaned = 17,
  kAdopt = 18,
  kAdopted = 19,
  kReparent = 20,
  kRefetch = 21,
  kBurst = 22,
  kBurstAck = 23,
};

// A reason is free text built from whatever went wrong (at 2,000 nodes, a list of hosts): the
// reader refuses any text over kMaxTextBytes, so a longer one would turn an Abort or a Failed
// into a message the peer must reject as bad. It is cut here instead, on a UTF-8 boundary.
std::string_view reason_text(std::string_view reason) {
  if (reason.size() <= kMaxTextBytes) {
    return reason;
  }
  std::size_t cut = kMaxTextBytes;
  while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) {
    --cut;  // reason[cut] continues a character: cut before the character starts
  }
  return reason.substr(0, cut);
}

template <std::size_t N>
void read_array(ByteReader& in, std::array<std::byte, N>& out) {
  const auto bytes = in.raw(N);
  if (bytes.size() == N) {
    std::copy(bytes.begin(), bytes.end(), out.begin());
  }
}

void write(ByteWriter& out, const Hello& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kHello)).u16(m.version);
  out.u8(static_cast<std::uint8_t>(m.channel)).u32(m.rank).raw(m.job_id).raw(m.nonce);
}
void write(ByteWriter& out, const Challenge& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kChallenge)).raw(m.nonce).raw(m.mac);
}
void write(ByteWriter& out, const Proof& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kProof)).raw(m.mac);
}
void write(ByteWriter& out, const Join& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kJoin)).blob(m.data_address).str(m.host);
}
void write(ByteWriter& out, const Plan& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kPlan)).u64(m.image_bytes).u32(m.chunk_bytes);
  out.u32(m.job_size).u32(m.mode).u32(m.data_rank).u32(m.stall_timeout_ms);
  out.str(m.topology).str(m.destination).str(m.job_tag);
  out.u8(static_cast<std::uint8_t>(m.parents.size()));
  for (const auto& parent : m.parents) {
    out.u32(parent.rank).blob(parent.address);
  }
  out.u8(m.tree);
}
void write(ByteWriter& out, const Ready&) { out.u8(static_cast<std::uint8_t>(Tag::kReady)); }
void write(ByteWriter& out, const Failed& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kFailed)).u8(m.exit_code).str(reason_text(m.reason));
}
void write(ByteWriter& out, const Finish& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kFinish)).u64(m.digest.high).u64(m.digest.low);
}
void write(ByteWriter& out, const Result& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kResult)).u64(m.busy_ns).u32(m.refetched).u8(m.link_kinds);
}
void write(ByteWriter& out, const Abort& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kAbort)).str(reason_text(m.reason));
}
void write(ByteWriter& out, const Bye&) { out.u8(static_cast<std::uint8_t>(Tag::kBye)); }
void write(ByteWriter& out, const Progress& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kProgress)).u64(m.bytes_verified);
}
void write(ByteWriter& out, const Probe& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kProbe)).u64(m.image_bytes).u8(m.force).u32(m.mode);
  out.u8(m.follow_symlinks);
  out.str(m.job_tag).str(m.source_key).str(m.destination).u8(m.tree);
  out.str(m.cache_dir).u64(m.cache_budget).str(m.source_path);
}
void write(ByteWriter& out, const Probed& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kProbed)).u8(m.cached).u64(m.digest.high).u64(m.digest.low);
}
void write(ByteWriter& out, const Skip&) { out.u8(static_cast<std::uint8_t>(Tag::kSkip)); }
void write(ByteWriter& out, const Region& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kRegion)).blob(m.descriptor).u32(m.resume_from);
  out.u8(m.tree);
}
void write(ByteWriter& out, const Orphaned& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kOrphaned))
      .u8(m.tree)
      .u32(m.verified)
      .str(reason_text(m.reason));
}
void write(ByteWriter& out, const Adopt& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kAdopt)).u32(m.data_rank).u8(m.tree);
}
void write(ByteWriter& out, const Adopted& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kAdopted)).u32(m.data_rank).u8(m.tree);
}
void write(ByteWriter& out, const Reparent& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kReparent)).u8(m.tree).u32(m.parent_rank);
  out.blob(m.parent_address);
}
void write(ByteWriter& out, const Refetch& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kRefetch)).u32(m.index);
}

void write(ByteWriter& out, const Burst& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kBurst)).u32(m.index).blob(m.filler);
}
void write(ByteWriter& out, const BurstAck& m) {
  out.u8(static_cast<std::uint8_t>(Tag::kBurstAck)).u32(m.index);
}

std::optional<Message> read_body(Tag tag, ByteReader& in) {
  switch (tag) {
    case Tag::kHello: {
      Hello m;
      m.version = in.u16();
      const std::uint8_t channel = in.u8();
      if (channel != static_cast<std::uint8_t>(Channel::kControl) &&
          channel != static_cast<std::uint8_t>(Channel::kData)) {
        return std::nullopt;
      }
      m.channel = static_cast<Channel>(channel);
      m.rank = in.u32();
      read_array(in, m.job_id);
      read_array(in, m.nonce);
      return m;
    }
    case Tag::kChallenge: {
      Challenge m;
      read_array(in, m.nonce);
      read_array(in, m.mac);
      return m;
    }
    case Tag::kProof: {
      Proof m;
      read_array(in, m.mac);
      return m;
    }
    case Tag::kJoin: {
      Join m;
      m.data_address = in.blob(kMaxAddressBytes);
      m.host = in.str(kMaxHostBytes);
      return m;
    }
    case Tag::kPlan: {
      Plan m;
      m.image_bytes = in.u64();
      m.chunk_bytes = in.u32();
      m.job_size = in.u32();
      m.mode = in.u32();
      m.data_rank = in.u32();
      m.stall_timeout_ms = in.u32();
      m.topology = in.str(kMaxTextBytes);
      m.destination = in.str(kMaxTextBytes);
      m.job_tag = in.str(kMaxTextBytes);
      const std::uint8_t parents = in.u8();
      if (parents > kMaxTrees) {
        return std::nullopt;
      }
      for (std::uint8_t i = 0; i < parents && in.ok(); ++i) {
        PlanParent parent;
        parent.rank = in.u32();
        parent.address = in.blob(kMaxAddressBytes);
        m.parents.push_back(std::move(parent));
      }
      m.tree = in.u8();
      if (m.tree > 1) {
        return std::nullopt;
      }
      return m;
    }
    case Tag::kReady:
      return Ready{};
    case Tag::kFailed: {
      Failed m;
      m.exit_code = in.u8();
      m.reason = in.str(kMaxTextBytes);
      return m;
    }
    case Tag::kFinish: {
      Finish m;
      m.digest.high = in.u64();
      m.digest.low = in.u64();
      return m;
    }
    case Tag::kResult: {
      Result m;
      m.busy_ns = in.u64();
      m.refetched = in.u32();
      m.link_kinds = in.u8();
      if ((m.link_kinds & ~kLinkKindBits) != 0)
        return std::nullopt;
      return m;
    }
    case Tag::kAbort:
      return Abort{in.str(kMaxTextBytes)};
    case Tag::kBye:
      return Bye{};
    case Tag::kRegion: {
      Region m;
      m.descriptor = in.blob(kMaxDescriptorBytes);
      m.resume_from = in.u32();
      m.tree = in.u8();
      if (m.tree >= kMaxTrees) {
        return std::nullopt;
      }
      return m;
    }
    case Tag::kProgress:
      return Progress{in.u64()};
    case Tag::kProbe: {
      Probe m;
      m.image_bytes = in.u64();
      m.force = in.u8();
      m.mode = in.u32();
      m.follow_symlinks = in.u8();
      m.job_tag = in.str(kMaxTextBytes);
      m.source_key = in.str(kMaxTextBytes);
      m.destination = in.str(kMaxTextBytes);
      m.tree = in.u8();
      m.cache_dir = in.str(kMaxTextBytes);
      m.cache_budget = in.u64();
      m.source_path = in.str(kMaxTextBytes);
      if (m.tree > 1 || (m.tree == 1 && !m.cache_dir.empty())) {
        return std::nullopt;  // a tree is never cached (yet): a probe saying both is not ours
      }
      return m;
    }
    case Tag::kProbed: {
      Probed m;
      m.cached = in.u8();
      m.digest.high = in.u64();
      m.digest.low = in.u64();
      return m;
    }
    case Tag::kSkip:
      return Skip{};
    case Tag::kOrphaned: {
      Orphaned m;
      m.tree = in.u8();
      m.verified = in.u32();
      m.reason = in.str(kMaxTextBytes);
      return m;
    }
    case Tag::kAdopt: {
      Adopt m;
      m.data_rank = in.u32();
      m.tree = in.u8();
      return m;
    }
    case Tag::kAdopted: {
      Adopted m;
      m.data_rank = in.u32();
      m.tree = in.u8();
      return m;
    }
    case Tag::kReparent: {
      Reparent m;
      m.tree = in.u8();
      m.parent_rank = in.u32();
      m.parent_address = in.blob(kMaxAddressBytes);
      return m;
    }
    case Tag::kRefetch:
      return Refetch{in.u32()};
    case Tag::kBurst: {
      Burst m;
      m.index = in.u32();
      m.filler = in.blob(kMaxBurstBytes);
      return m;
    }
    case Tag::kBurstAck:
      return BurstAck{in.u32()};
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::byte> encode(const Message& message) {
  ByteWriter out;
  std::visit([&out](const auto& m) { write(out, m); }, message);
  return out.take();
}

std::optional<Message> decode(std::span<const std::byte> bytes) {
  ByteReader in(bytes);
  const std::uint8_t tag = in.u8();
  if (!in.ok() || tag < static_cast<std::uint8_t>(Tag::kHello) ||
      tag > static_cast<std::uint8_t>(Tag::kBurstAck)) {
    return std::nullopt;
  }
  std::optional<Message> message = read_body(static_cast<Tag>(tag), in);
  if (!message || !in.done()) {
    return std::nullopt;
  }
  return message;
}

const char* message_name(const Message& message) noexcept {
  static constexpr const char* kNames[] = {
      "Hello",  "Challenge", "Proof",    "Join",  "Plan",    "Ready",    "Failed",
      "Finish", "Result",    "Abort",    "Bye",   "Region",  "Progress", "Probe",
      "Probed", "Skip",      "Orphaned", "Adopt", "Adopted", "Reparent", "Refetch",
      "Burst",  "BurstAck"};
  static_assert(std::size(kNames) == std::variant_size_v<Message>);
  return kNames[message.index()];
}

}  // namespace imgcast::replicator
