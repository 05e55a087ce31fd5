#include "replicator/pipeline/upstream.h"

#include <fmt/format.h>

#include "replicator/log.h"
#include "replicator/protocol/auth.h"
#include "transport/error.h"

namespace imgcast::replicator {

namespace tp = transport;
using Clock = std::chrono::steady_clock;

namespace {
// A parent's endpoint tag. Downstream tags its children 1..N and finds them by tag; a parent is
// found by its endpoint, and this tag (never a child's) keeps it from being taken for one.
constexpr std::uint64_t kParentTag = ~std::uint64_t{0};
}  // namespace

// The link to the parent of one tree.
struct Upstream::Parent {
  int tree = 0;
  std::unique_ptr<tp::Endpoint> endpoint;
  std::unique_ptr<InitiatorHandshake> handshake;
  std::string name;
  bool ready = false;
  std::uint32_t bad_chunks = 0;      // corrupt chunks from this parent
  Clock::time_point last_arrival{};  // its last chunk (or the connection), for the stall check
  std::optional<std::string> lost;   // set: given up on, waiting for reparent()
};

Upstream::Upstream(tp::Context& data, const DataNodeOptions& options, ChunkLedger& ledger,
                   tp::MemoryRegion* own_region)
    : data_(data), options_(options), ledger_(ledger), own_region_(own_region) {
  if (options_.rank != options_.topology->root()) {
    for (int tree = 0; tree < ledger_.trees(); ++tree) {
      parents_.push_back(std::make_unique<Parent>());
      parents_.back()->tree = tree;
    }
  }
}

Upstream::~Upstream() = default;

const std::optional<std::string>& Upstream::orphaned(int tree) const noexcept {
  static const std::optional<std::string> kNone;
  return tree >= 0 && tree < static_cast<int>(parents_.size()) ? parents_[tree]->lost : kNone;
}

void Upstream::connect(int tree, std::span<const std::byte> address,
                       std::chrono::milliseconds timeout, const std::string& parent_name) {
  Parent& parent = *parents_.at(tree);
  parent.name = parent_name;
  parent.last_arrival = Clock::now();
  parent.endpoint = data_.connect(address, timeout);
  parent.endpoint->set_user_tag(kParentTag);
  parent.handshake = std::make_unique<InitiatorHandshake>(
      *options_.key, options_.job, Channel::kData, static_cast<std::uint32_t>(options_.rank));
  const auto hello = encode(parent.handshake->hello());
  if (auto status = parent.endpoint->send_control(hello); !status.is_ok()) {
    throw tp::Error(tp::StatusCode::kClosed,
                    fmt::format("lost {} during the handshake: {}", parent.name, status.message()));
  }
}

void Upstream::reparent(int tree, std::span<const std::byte> address,
                        std::chrono::milliseconds timeout, const std::string& parent_name) {
  Parent& parent = *parents_.at(tree);
  // Between two batches of completions (the owner's loop), so no event names the old endpoint.
  // The old parent may write no more: only the new link is granted (once it proves itself).
  if (own_region_ != nullptr && parent.endpoint)
    own_region_->revoke_writer(*parent.endpoint);
  parent.endpoint.reset();
  parent.handshake.reset();
  parent.ready = false;
  parent.bad_chunks = 0;
  // This tree's chunks past the verified prefix may be half-written by the old parent (or landed
  // out of order): the new parent sends all of them again, so none arrives twice.
  ledger_.forget_unverified(tree);
  connect(tree, address, timeout, parent_name);
  parent.lost.reset();
}

void Upstream::freeze() {
  for (auto& parent : parents_) {
    if (own_region_ != nullptr && parent->endpoint)
      own_region_->revoke_writer(*parent->endpoint);
    // Called between two batches of completions, like reparent(): no event names the endpoint.
    parent->endpoint.reset();
    parent->handshake.reset();
    parent->ready = false;
  }
  own_region_ = nullptr;
}

void Upstream::abandon(int tree, std::string reason) {
  lose(*parents_.at(tree), std::move(reason));
}

void Upstream::abandon_silent(Clock::time_point now, std::chrono::milliseconds timeout) {
  for (auto& parent : parents_) {
    if (!parent->lost && now - parent->last_arrival > timeout &&
        ledger_.tree_missing_chunks(parent->tree)) {
      lose(*parent, fmt::format("no data from {} for {:.1f} s", parent->name,
                                static_cast<double>(timeout.count()) / 1000));
    }
  }
}

bool Upstream::on_control(tp::Endpoint* from, std::span<const std::byte> bytes) {
  Parent* parent = find(from);
  if (parent == nullptr) {
    return false;
  }
  if (parent->lost) {
    return true;  // given up on: it is replaced at the next reparent()
  }
  const std::optional<Message> message = decode(bytes);
  if (!message) {
    lose(*parent, fmt::format("{} sent a malformed message", parent->name));
    return true;
  }
  on_message(*parent, *message);
  return true;
}

void Upstream::on_message(Parent& parent, const Message& message) {
  if (const auto* refused = std::get_if<Failed>(&message); refused && parent.ready) {
    lose(parent, fmt::format("{}: {}", parent.name, refused->reason));
    return;
  }
  const auto* challenge = std::get_if<Challenge>(&message);
  if (parent.ready || challenge == nullptr) {
    lose(parent, fmt::format("{} sent an unexpected {}", parent.name, message_name(message)));
    return;
  }
  const std::optional<Proof> proof = parent.handshake->answer(*challenge);
  if (!proof) {
    ledger_.fail(
        fmt::format("{} failed authentication: it does not hold this job's key", parent.name));
    return;
  }
  // The parent proved it holds the job key: its link may carry big control messages, and it
  // alone may write into our region. The region descriptor (our write key) goes out only now.
  parent.endpoint->trust();
  tp::RegionDescriptor descriptor;
  descriptor.length = 0;
  if (own_region_ != nullptr) {
    own_region_->allow_writer(*parent.endpoint);
    descriptor = own_region_->descriptor();
  }
  const Region region{descriptor.encode(), ledger_.verified(),
                      static_cast<std::uint8_t>(parent.tree)};
  if (!parent.endpoint->send_control(encode(*proof)).is_ok() ||
      !parent.endpoint->send_control(encode(region)).is_ok()) {
    lose(parent, fmt::format("lost {} during the handshake", parent.name));
    return;
  }
  parent.ready = true;
  // Known for good now: a link falls back to TCP only before the parent's first message.
  link_kinds_ |= static_cast<std::uint8_t>(1u << static_cast<unsigned>(parent.endpoint->kind()));
}

void Upstream::on_arrived(const tp::WriteArrived& arrived) {
  Parent* parent = find(arrived.from);
  if (parent == nullptr || parent->lost || ledger_.failure()) {
    return;  // Only our parents hold our write key; anything else was already refused.
  }
  // The transport checked the range against the region; the chunk index and length are
  // checked here against the plan, before anything trusts them.
  if (arrived.imm >= ledger_.count() || ledger_.tree_of(arrived.imm) != parent->tree) {
    lose(*parent, fmt::format("{} sent chunk {} of a {}-chunk image, not one of its tree",
                              parent->name, arrived.imm, ledger_.count()));
    return;
  }
  const Chunk chunk = ledger_.plan().at(arrived.imm);
  if (arrived.length != chunk.length || ledger_.landed(chunk.index)) {
    lose(*parent, fmt::format("{} sent chunk {} twice or with the wrong length ({} bytes)",
                              parent->name, chunk.index, arrived.length));
    return;
  }
  parent->last_arrival = Clock::now();
  if (!ledger_.land_if_intact(chunk, arrived.notice)) {
    refetch(*parent, chunk.index);
    return;
  }
  SPDLOG_LOGGER_TRACE(&log(), "rank {} chunk {} landed", options_.rank, chunk.index);
}

void Upstream::refetch(Parent& parent, std::uint32_t index) {
  ++refetched_;
  if (++parent.bad_chunks > kMaxBadChunksPerParent) {
    lose(parent, fmt::format("{} sent {} chunks that failed their xxh3-64 check", parent.name,
                             parent.bad_chunks));
    return;
  }
  log().warn("rank {}: chunk {} from {} failed its xxh3-64 check; asking for it again",
             options_.rank, index, parent.name);
  if (!parent.endpoint->send_control(encode(Refetch{index})).is_ok()) {
    lose(parent, fmt::format("lost {} while asking for chunk {} again", parent.name, index));
  }
}

bool Upstream::on_peer_failed(tp::Endpoint* peer, const tp::Status& status) {
  Parent* parent = find(peer);
  if (parent == nullptr) {
    return false;
  }
  if (status.code() == tp::StatusCode::kNoSpace) {
    // Our own file system filled up under the transfer (another process took the space after
    // the check): no other parent can help, the node fails with one line.
    ledger_.fail(fmt::format(
        "no space left for the image in {} ({} of {} chunks here): free space or pick another "
        "destination",
        ledger_.image().where(), ledger_.verified(), ledger_.count()));
    return true;
  }
  // lose() ignores a parent that owes us nothing more.
  lose(*parent, fmt::format("lost {} after {} of {} chunks: {}", parent->name, ledger_.verified(),
                            ledger_.count(), status.to_string()));
  return true;
}

void Upstream::lose(Parent& parent, std::string reason) {
  if (ledger_.failure() || parent.lost || !ledger_.tree_missing_chunks(parent.tree)) {
    return;
  }
  log().warn("rank {}: {}; asking for a new parent", options_.rank, reason);
  // Given up on: whatever it writes from now on is refused, not just ignored.
  if (own_region_ != nullptr && parent.endpoint)
    own_region_->revoke_writer(*parent.endpoint);
  parent.ready = false;
  parent.lost = std::move(reason);
}

Upstream::Parent* Upstream::find(tp::Endpoint* endpoint) noexcept {
  for (auto& parent : parents_) {
    if (parent->endpoint.get() == endpoint && endpoint != nullptr)
      return parent.get();
  }
  return nullptr;
}

}  // namespace imgcast::replicator
