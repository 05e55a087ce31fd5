// The replicator's messages. They travel as control messages (Endpoint::send_control) on two
// kinds of channel: the control channel between the root and each agent, and the data channel
// between a parent and each child. Every message is one u8 type followed by fixed-width
// little-endian fields (byte_codec.h); decode() rejects unknown types, over-long fields and
// trailing bytes, so a malformed message never becomes a half-filled struct.
//
// Message script (docs/protocol.md has the full version):
//   control:  agent -> Hello, root -> Challenge, agent -> Proof, agent -> Join{data address}
//             root -> Probe; agent -> Probed{cached?}
//             root -> Plan (or Skip: the node's cached copy stands); agent -> Ready | Failed
//             root -> Finish{image digest} (after the root has read every chunk)
//             agent -> Progress* (while receiving), Result | Failed;  root -> Bye | Abort
//             re-parenting, when a node's parent dies, stalls or keeps sending bad chunks:
//             orphan -> Orphaned{its verified prefix};  root -> Adopt{orphan} to a live
//             ancestor, which answers Adopted;  root -> Reparent{new parent's address} to the
//             orphan, which connects there and resumes from the first chunk it lacks
//   data:     child -> Hello, parent -> Challenge, child -> Proof,
//             child -> Region{descriptor, resume_from}
//             then one-sided writes, parent -> child, from chunk resume_from on;
//             child -> Refetch{chunk} for a chunk that failed its xxh3-64 check.
//   link:     while the others join, root -> Burst* to the first agent that joined, which
//             answers BurstAck for each: the plan's link speed, measured (link_meter.h)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "replicator/image/integrity.h"

namespace imgcast::replicator {

inline constexpr std::uint16_t kProtocolVersion = 5;  // 5: Probe names the node cache

using JobId = std::array<std::byte, 16>;
using Nonce = std::array<std::byte, 32>;
using Mac = std::array<std::byte, 32>;

enum class Channel : std::uint8_t { kControl = 1, kData = 2 };

struct Hello {
  std::uint16_t version = kProtocolVersion;
  Channel channel = Channel::kControl;
  std::uint32_t rank = 0;
  JobId job_id{};
  Nonce nonce{};
};
struct Challenge {
  Nonce nonce{};
  Mac mac{};
};
struct Proof {
  Mac mac{};
};
struct Join {
  std::vector<std::byte> data_address;
  std::string host;  // the agent's own name for its host (shown when the root had none)
};
// Does the node already hold this image? (the node-local cache, cache_record.h)
// A node not cached stages its file now (temporary file, fallocate), so that a full or unwritable
// destination fails that node alone before any data moves: it answers Failed.
struct Probe {
  std::uint64_t image_bytes = 0;
  std::uint8_t force = 0;  // 1: answer "not cached" without looking
  std::uint32_t mode = 0644;
  std::uint8_t follow_symlinks = 0;  // 1: the destination's directory may be reached by a symlink
  std::string job_tag;
  std::string source_key;   // make_source_key() of the root's source
  std::string destination;  // may hold %r / %h, expanded by each node
  // 1: the image is a directory tree's stream (tree/stream_layout.h), placed as a directory at
  // DST once verified; 0: one file. Only 0 and 1 decode.
  std::uint8_t tree = 0;
  // --cache: the copy goes into each node's cache at `cache_dir` (node_cache.h), evicting to fit
  // `cache_budget` bytes (0: no budget but the file system's), and DST, when not empty, is placed
  // from the entry. Empty: no cache.
  std::string cache_dir;
  std::uint64_t cache_budget = 0;
  std::string source_path;  // the root's source, for the entry's record (`imgcast cache list`)
};
struct Probed {
  std::uint8_t cached = 0;
  ImageDigest digest;  // the cached copy's, when cached
};
// The node's cached copy stands: no plan, no data; it answers Result at once.
struct Skip {};
// One parent of a node: in the tree of its place in Plan::parents.
struct PlanParent {
  std::uint32_t rank = 0;  // the parent's rank in the host list (for messages)
  std::vector<std::byte> address;
};
struct Plan {
  std::uint64_t image_bytes = 0;
  std::uint32_t chunk_bytes = 0;
  std::uint32_t job_size = 0;  // nodes in the transfer (those not skipped)
  std::uint32_t mode = 0644;
  std::uint32_t data_rank = 0;  // this node's place in the transfer's tree (0: the root)
  std::uint32_t stall_timeout_ms = 0;
  std::string topology;
  std::string destination;  // may hold %r / %h, expanded by each node
  std::string job_tag;
  std::vector<PlanParent> parents;  // one per tree of the topology (at most kMaxTrees)
  std::uint8_t tree = 0;  // as Probe::tree; the agent refuses a plan that disagrees
};
struct Ready {};
struct Failed {
  std::uint8_t exit_code = 2;
  std::string reason;
};
struct Finish {
  ImageDigest digest;
};
struct Result {
  std::uint64_t busy_ns = 0;    // from the plan to the committed file, on the agent's clock
  std::uint32_t refetched = 0;  // chunks that arrived corrupt and were fetched again
  // The backends its parent links ran on, one bit per transport::Kind (1 << kind): under
  // --transport auto a link may have fallen back to TCP. decode() refuses unknown bits.
  std::uint8_t link_kinds = 0;
};
struct Abort {
  std::string reason;
};
struct Bye {};
struct Region {
  std::vector<std::byte> descriptor;
  std::uint32_t resume_from = 0;  // the child holds chunks [0, resume_from): send the rest
  std::uint8_t tree = 0;          // which of the topology's trees this link serves
};
// Agent -> root: this node lost its parent (dead, stalled, or sending bad data) and waits for a
// new one. It holds the verified chunks [0, verified).
struct Orphaned {
  std::uint8_t tree = 0;  // the tree in which it lost its parent
  std::uint32_t verified = 0;
  std::string reason;
};
// Root -> agent: serve the node at place `data_rank` of the tree as an extra child.
struct Adopt {
  std::uint32_t data_rank = 0;
  std::uint8_t tree = 0;
};
// Agent -> root: ready to accept `data_rank` in `tree`.
struct Adopted {
  std::uint32_t data_rank = 0;
  std::uint8_t tree = 0;
};
// Root -> orphan: your new parent in `tree`.
struct Reparent {
  std::uint8_t tree = 0;
  std::uint32_t parent_rank = 0;  // in the host list (for messages)
  std::vector<std::byte> parent_address;
};
// Child -> parent (data channel): chunk `index` arrived corrupt; write it again.
struct Refetch {
  std::uint32_t index = 0;
};
struct Progress {
  std::uint64_t bytes_verified = 0;  // agent -> root, a few times a second while receiving
};
// Root -> one agent, during setup: filler bytes that time the root's link (link_meter.h).
struct Burst {
  std::uint32_t index = 0;
  std::vector<std::byte> filler;  // at most kMaxBurstBytes
};
// Agent -> root: burst `index` has arrived whole.
struct BurstAck {
  std::uint32_t index = 0;
};

using Message = std::variant<Hello, Challenge, Proof, Join, Plan, Ready, Failed, Finish, Result,
                             Abort, Bye, Region, Progress, Probe, Probed, Skip, Orphaned, Adopt,
                             Adopted, Reparent, Refetch, Burst, BurstAck>;

// Bounds a decoder enforces.
inline constexpr std::size_t kMaxTextBytes = 4096;
inline constexpr std::size_t kMaxAddressBytes = 1024;
inline constexpr std::size_t kMaxHostBytes = 255;
inline constexpr std::size_t kMaxDescriptorBytes = 8192;
inline constexpr std::size_t kMaxTrees = 2;
inline constexpr std::size_t kMaxBurstBytes = 64u << 10;
// Result::link_kinds may hold these bits only (tcp, ucx, verbs).
inline constexpr std::uint8_t kLinkKindBits = (1u << 1) | (1u << 2) | (1u << 3);

std::vector<std::byte> encode(const Message& message);
std::optional<Message> decode(std::span<const std::byte> bytes);
// "Hello", "Plan", ... for logs and protocol errors.
const char* message_name(const Message& message) noexcept;

}  // namespace imgcast::replicator
