#include "replicator/pipeline/downstream.h"

#include <fmt/format.h>

#include <algorithm>

#include "replicator/log.h"
#include "replicator/protocol/messages.h"
#include "transport/endpoint.h"
#include "transport/error.h"

namespace imgcast::replicator {

namespace tp = transport;

namespace {
// A write's cookie is its chunk index; this bit marks a chunk sent again (Refetch), which does
// not advance the child's in-order count.
constexpr std::uint64_t kResendBit = std::uint64_t{1} << 63;
}  // namespace

struct Downstream::Child {
  int rank = -1;
  int tree = 0;  // it is served the chunks k with k % trees == tree
  std::unique_ptr<tp::Endpoint> endpoint;
  std::unique_ptr<tp::RemoteRegion> remote;
  std::uint64_t next = 0;       // next chunk to post (of its tree)
  std::uint64_t completed = 0;  // in-order writes that finished
  std::size_t in_flight = 0;
  std::vector<std::uint32_t> resend;  // chunks the child asked for again (Refetch), oldest first
  bool alive = true;
};

Downstream::Downstream(const DataNodeOptions& options, const ChunkLedger& ledger,
                       const tp::MemoryRegion* own_region)
    : options_(options), window_(options.window), ledger_(ledger), own_region_(own_region) {
  for (int tree = 0; tree < ledger_.trees(); ++tree) {
    for (int child : options_.topology->children(options_.rank, tree)) {
      expected_.emplace_back(child, tree);
    }
  }
}

Downstream::~Downstream() = default;

void Downstream::adopt(int data_rank, int tree) {
  const std::pair<int, int> entry{data_rank, tree};
  if (std::find(expected_.begin(), expected_.end(), entry) == expected_.end()) {
    expected_.push_back(entry);
  }
}

void Downstream::serve(AdmittedPeer peer) {
  const auto* region = std::get_if<Region>(&peer.introduction);
  const auto descriptor = region ? tp::RegionDescriptor::decode(region->descriptor) : std::nullopt;
  std::string why =
      region ? refusal(peer.rank, *region, descriptor)
             : fmt::format("sent {} instead of its region", message_name(peer.introduction));
  std::unique_ptr<tp::RemoteRegion> remote;
  if (why.empty() && ledger_.plan().image_bytes() > 0) {
    try {
      remote = peer.endpoint->import_region(*descriptor);
    } catch (const tp::Error& error) {
      why = error.what();
    }
  }
  if (!why.empty()) {
    log().warn("refused data connection from {}: {}", peer.endpoint->peer_name(), why);
    // It proved it holds the job key, so it is told why and fails at once instead of waiting
    // for data (some transports, UCX, do not report a closed endpoint to the peer). The endpoint
    // stays open (parked) so the refusal is delivered on every transport.
    // Ignored: a send that fails is the refused peer's loss alone (it sees the connection close).
    (void)peer.endpoint->send_control(
        encode(Failed{2, fmt::format("rank {} refused this node: {}", options_.rank, why)}));
    refused_.push_back(std::move(peer.endpoint));
    return;
  }
  const int rank = static_cast<int>(peer.rank);
  const int tree = region->tree;
  const int trees = ledger_.trees();
  // The same rank again in the same tree (it lost us and came back, perhaps before we saw the
  // old connection fail): it proved it holds the key, so the new connection replaces the old one.
  for (auto& old : children_) {
    if (old->rank == rank && old->tree == tree && old->alive) {
      drop(*old, "reconnected");
    }
  }
  auto child = std::make_unique<Child>();
  child->rank = rank;
  child->tree = tree;
  // Its first chunk of its tree at or after resume_from.
  child->next = region->resume_from + (tree - ledger_.tree_of(region->resume_from) + trees) % trees;
  child->completed = child->next / trees;
  child->remote = std::move(remote);
  child->endpoint = std::move(peer.endpoint);
  child->endpoint->set_user_tag(children_.size() + 1);
  log().debug("rank {} serves child rank {} at {} from chunk {}{}", options_.rank, rank,
              child->endpoint->peer_name(), child->next,
              trees > 1 ? fmt::format(" (tree {})", tree) : std::string());
  children_.push_back(std::move(child));
  ++live_;
}

std::string Downstream::refusal(std::uint32_t rank, const Region& region,
                                const std::optional<tp::RegionDescriptor>& descriptor) const {
  const ChunkPlan& plan = ledger_.plan();
  if (std::none_of(expected_.begin(), expected_.end(),
                   [rank](const auto& entry) { return entry.first == static_cast<int>(rank); })) {
    return fmt::format("claims rank {}, which is not a child of rank {}", rank, options_.rank);
  }
  if (!descriptor) {
    return "sent a malformed region descriptor";
  }
  if (descriptor->length < plan.image_bytes()) {
    return fmt::format("offers a {}-byte region for a {}-byte image", descriptor->length,
                       plan.image_bytes());
  }
  if (region.resume_from > plan.count()) {
    return fmt::format("asks to resume from chunk {} of a {}-chunk image", region.resume_from,
                       plan.count());
  }
  if (std::find(expected_.begin(), expected_.end(),
                std::pair<int, int>{static_cast<int>(rank), region.tree}) == expected_.end()) {
    return fmt::format("asks for tree {}, in which rank {} is not its parent", region.tree,
                       options_.rank);
  }
  return {};
}

bool Downstream::on_control(tp::Endpoint* from, std::span<const std::byte> bytes) {
  Child* child = find(from);
  if (child == nullptr) {
    // A peer we refused after its proof, which may still talk: it was told why.
    return refused(from);
  }
  const std::optional<Message> message = decode(bytes);
  if (!message) {
    drop(*child, "sent a malformed message");
    return true;
  }
  on_message(*child, *message);
  return true;
}

void Downstream::on_message(Child& child, const Message& message) {
  const auto* refetch = std::get_if<Refetch>(&message);
  if (refetch == nullptr) {
    drop(child, fmt::format("sent {} on a data channel that carries only Refetch after the "
                            "handshake",
                            message_name(message)));
    return;
  }
  // Only a chunk of its tree already sent can be asked for again, and the queue stays bounded:
  // a child that asks for more is broken (or hostile), not unlucky.
  if (refetch->index >= child.next || ledger_.tree_of(refetch->index) != child.tree) {
    drop(child, fmt::format("asked again for chunk {}, which it was never sent", refetch->index));
    return;
  }
  if (child.resend.size() >= window_ * 4) {
    drop(child, "asked for too many chunks again at once");
    return;
  }
  log().warn("rank {} sends chunk {} again to child rank {} (it arrived corrupt)", options_.rank,
             refetch->index, child.rank);
  child.resend.push_back(refetch->index);
}

void Downstream::on_write_done(const tp::WriteDone& done) {
  Child* child = find(done.endpoint);
  if (child == nullptr) {
    return;
  }
  --child->in_flight;
  if (!done.status.is_ok()) {
    drop(*child, done.status.to_string());
    return;
  }
  if ((done.cookie & kResendBit) == 0) {
    ++child->completed;
  }
}

bool Downstream::on_peer_failed(tp::Endpoint* peer, const tp::Status& status) {
  if (Child* child = find(peer)) {
    drop(*child, status.to_string());
    return true;
  }
  return refused(peer);
}

void Downstream::forward_all() {
  for (auto& child : children_) {
    forward(*child);
  }
}

void Downstream::forward(Child& child) {
  while (child.alive && child.in_flight < window_) {
    // Chunks asked for again go first: the child's verified prefix waits on them. Otherwise the
    // child's next chunk of its tree, as soon as it has landed here and been checked.
    const bool again = !child.resend.empty();
    const std::uint64_t index = again ? child.resend.front() : child.next;
    if (index >= ledger_.count() || !ledger_.landed(index)) {
      return;  // not here yet (or being sent again to us by a new parent)
    }
    const Chunk chunk = ledger_.plan().at(static_cast<std::uint32_t>(index));
    tp::WriteRequest request;
    request.source = own_region_;
    request.source_offset = chunk.offset;
    request.target = child.remote.get();
    request.target_offset = chunk.offset;
    request.length = chunk.length;
    request.imm = chunk.index;
    request.notice = ledger_.digest_of(chunk.index);
    request.cookie = chunk.index | (again ? kResendBit : 0);
    const tp::Status status = child.endpoint->post_write(request);
    if (status.code() == tp::StatusCode::kBusy) {
      return;
    }
    if (!status.is_ok()) {
      drop(child, status.to_string());
      return;
    }
    if (again) {
      child.resend.erase(child.resend.begin());
    } else {
      child.next += ledger_.trees();
    }
    ++child.in_flight;
  }
}

std::optional<std::uint32_t> Downstream::chunk_awaited(std::uint64_t limit) const noexcept {
  for (const auto& child : children_) {
    if (!child->alive)
      continue;
    const std::uint64_t index = child->resend.empty() ? child->next : child->resend.front();
    if (child->in_flight < window_ && index < limit && !ledger_.landed(index)) {
      return static_cast<std::uint32_t>(index);
    }
  }
  return std::nullopt;
}

std::uint64_t Downstream::fastest_progress() const noexcept {
  std::uint64_t fastest = 0;
  for (const auto& child : children_) {
    if (child->alive) {
      fastest = std::max(fastest, child->completed * ledger_.trees());
    }
  }
  return fastest;
}

void Downstream::drop(Child& child, const std::string& reason) {
  if (child.alive) {
    // A child that has every chunk of its tree and nothing in flight leaves at the end of every
    // run (Bye): that is no news. Anything else is.
    const bool served_in_full =
        child.next >= ledger_.count() && child.in_flight == 0 && child.resend.empty();
    if (served_in_full) {
      log().debug("rank {} served child rank {} in full; it left: {}", options_.rank, child.rank,
                  reason);
    } else {
      log().warn("rank {} stops serving child rank {}: {}", options_.rank, child.rank, reason);
    }
    child.alive = false;
    --live_;
  }
}

Downstream::Child* Downstream::find(tp::Endpoint* endpoint) noexcept {
  const std::uint64_t tag = endpoint->user_tag();
  if (tag == 0 || tag > children_.size()) {
    return nullptr;
  }
  Child* child = children_[tag - 1].get();
  return child->endpoint.get() == endpoint ? child : nullptr;
}

bool Downstream::refused(const tp::Endpoint* endpoint) const noexcept {
  return std::any_of(refused_.begin(), refused_.end(),
                     [endpoint](const auto& e) { return e.get() == endpoint; });
}

}  // namespace imgcast::replicator
