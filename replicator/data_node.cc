#include "replicator/data_node.h"

#include <fmt/format.h>

#include <algorithm>

#include "replicator/errors.h"
#include "replicator/log.h"
#include "replicator/messages.h"
#include "transport/error.h"

namespace imgcast::replicator {

namespace tp = transport;

namespace {
// Endpoint tags: 1..N are children (index + 1); the parent and pending peers are found otherwise.
constexpr std::uint64_t kParentTag = ~std::uint64_t{0};
// A write's cookie is its chunk index; this bit marks a chunk sent again (Refetch), which does
// not advance the child's in-order count.
constexpr std::uint64_t kResendBit = std::uint64_t{1} << 63;
}  // namespace

struct DataNode::Child {
  int rank = -1;
  std::unique_ptr<tp::Endpoint> endpoint;
  std::unique_ptr<tp::RemoteRegion> remote;
  std::uint32_t next = 0;       // next chunk to post
  std::uint32_t completed = 0;  // in-order writes that finished
  std::size_t in_flight = 0;
  std::vector<std::uint32_t> resend;  // chunks the child asked for again (Refetch), oldest first
  bool alive = true;
};

struct DataNode::Pending {
  enum class Step { kHello, kProof, kRegion };
  Pending(std::unique_ptr<tp::Endpoint> e, const JobKey& key, const JobId& job)
      : endpoint(std::move(e)), handshake(key, job, Channel::kData) {}
  std::unique_ptr<tp::Endpoint> endpoint;
  ResponderHandshake handshake;
  Step step = Step::kHello;
};

DataNode::DataNode(tp::Context& data, const DataNodeOptions& options, StagedImage& image)
    : data_(data),
      options_(options),
      plan_(options.image_bytes, options.chunk_bytes),
      image_(image),
      digests_(plan_.count()),
      landed_(plan_.count()) {
  if (!image_.bytes().empty()) {
    region_ = data_.register_memory(image_.bytes(), tp::Access::kReadWrite);
  }
  expected_children_ = options_.topology->children(options_.rank);
}

DataNode::~DataNode() = default;

void DataNode::connect_to_parent(std::span<const std::byte> address,
                                 std::chrono::milliseconds timeout,
                                 const std::string& parent_name) {
  parent_name_ = parent_name;
  parent_ = data_.connect(address, timeout);
  parent_->set_user_tag(kParentTag);
  parent_handshake_ = std::make_unique<InitiatorHandshake>(
      *options_.key, options_.job, Channel::kData, static_cast<std::uint32_t>(options_.rank));
  const auto hello = encode(parent_handshake_->hello());
  if (auto status = parent_->send_control(hello); !status.is_ok()) {
    throw tp::Error(tp::StatusCode::kClosed, fmt::format("lost {} during the handshake: {}",
                                                         parent_name_, status.message()));
  }
}

void DataNode::use_source(const ImageSource& source) { source_ = &source; }

void DataNode::adopt(int data_rank) {
  if (std::find(expected_children_.begin(), expected_children_.end(), data_rank) ==
      expected_children_.end()) {
    expected_children_.push_back(data_rank);
  }
}

void DataNode::abandon_parent(std::string reason) { lose_parent(std::move(reason)); }

void DataNode::reparent(std::span<const std::byte> address, std::chrono::milliseconds timeout,
                        const std::string& parent_name) {
  // Between two batches of completions (the owner's loop), so no event names the old endpoint.
  parent_.reset();
  parent_handshake_.reset();
  parent_ready_ = false;
  bad_from_parent_ = 0;
  // Chunks past the verified prefix may be half-written by the old parent (or landed out of
  // order): the new parent sends all of them again, so none arrives twice.
  std::fill(landed_.begin() + verified_, landed_.end(), std::uint8_t{0});
  connect_to_parent(address, timeout, parent_name);
  orphaned_.reset();
}

std::uint64_t DataNode::bytes_verified() const noexcept {
  return verified_ == plan_.count() ? plan_.image_bytes()
                                    : static_cast<std::uint64_t>(verified_) * plan_.chunk_bytes();
}

void DataNode::handle(tp::Completion& completion) {
  std::visit(
      [this](auto& event) {
        using T = std::decay_t<decltype(event)>;
        if constexpr (std::is_same_v<T, tp::PeerAccepted>) {
          on_accepted(std::move(event.endpoint));
        } else if constexpr (std::is_same_v<T, tp::ControlArrived>) {
          on_control(event.from, event.bytes);
        } else if constexpr (std::is_same_v<T, tp::WriteArrived>) {
          on_arrived(event);
        } else if constexpr (std::is_same_v<T, tp::WriteDone>) {
          on_write_done(event);
        } else if constexpr (std::is_same_v<T, tp::PeerFailed>) {
          on_peer_failed(event.peer, event.status);
        }
      },
      completion);
}

void DataNode::on_accepted(std::unique_ptr<tp::Endpoint> endpoint) {
  // A connection is nobody until it proves it holds the job key; until then it gets nothing
  // but a challenge.
  pending_.push_back(std::make_unique<Pending>(std::move(endpoint), *options_.key, options_.job));
}

void DataNode::on_control(tp::Endpoint* from, std::span<const std::byte> bytes) {
  const std::optional<Message> message = decode(bytes);
  if (from == parent_.get()) {
    if (orphaned_) {
      return;  // given up on: it is replaced at the next reparent()
    }
    if (!message) {
      lose_parent(fmt::format("{} sent a malformed message", parent_name_));
      return;
    }
    on_parent_message(*message);
    return;
  }
  if (Pending* pending = find_pending(from)) {
    if (!message) {
      log().warn("refused data connection from {}: malformed message", from->peer_name());
      std::erase_if(pending_, [from](const auto& p) { return p->endpoint.get() == from; });
      return;
    }
    on_pending_message(*pending, *message);
    return;
  }
  if (Child* child = find_child(from)) {
    if (!message) {
      drop_child(*child, "sent a malformed message");
      return;
    }
    on_child_message(*child, *message);
  }
}

void DataNode::on_child_message(Child& child, const Message& message) {
  const auto* refetch = std::get_if<Refetch>(&message);
  if (refetch == nullptr) {
    drop_child(child, fmt::format("sent {} on a data channel that carries only Refetch after the "
                                  "handshake",
                                  message_name(message)));
    return;
  }
  // Only a chunk already sent can be asked for again, and the queue stays bounded: a child that
  // asks for more is broken (or hostile), not unlucky.
  if (refetch->index >= child.next) {
    drop_child(child,
               fmt::format("asked again for chunk {}, which it was never sent", refetch->index));
    return;
  }
  if (child.resend.size() >= options_.window * 4) {
    drop_child(child, "asked for too many chunks again at once");
    return;
  }
  log().warn("rank {} sends chunk {} again to child rank {} (it arrived corrupt)", options_.rank,
             refetch->index, child.rank);
  child.resend.push_back(refetch->index);
}

void DataNode::on_pending_message(Pending& pending, const Message& message) {
  tp::Endpoint* endpoint = pending.endpoint.get();
  auto refuse = [this, endpoint, &pending](const std::string& why) {
    log().warn("refused data connection from {}: {}", endpoint->peer_name(), why);
    // A peer that proved it holds the job key is told why, so it fails at once instead of
    // waiting for data (some transports, UCX, do not report a closed endpoint to the peer).
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [endpoint](const auto& p) { return p->endpoint.get() == endpoint; });
    if (pending.step == Pending::Step::kRegion) {
      // The endpoint stays open (parked) so the refusal is delivered on every transport.
      (void)endpoint->send_control(
          encode(Failed{2, fmt::format("rank {} refused this node: {}", options_.rank, why)}));
      refused_.push_back(std::move((*it)->endpoint));
    }
    pending_.erase(it);
  };
  switch (pending.step) {
    case Pending::Step::kHello: {
      const auto* hello = std::get_if<Hello>(&message);
      if (hello == nullptr) {
        return refuse(fmt::format("sent {} before Hello", message_name(message)));
      }
      const int rank = static_cast<int>(hello->rank);
      if (std::find(expected_children_.begin(), expected_children_.end(), rank) ==
          expected_children_.end()) {
        return refuse(
            fmt::format("claims rank {}, which is not a child of rank {}", rank, options_.rank));
      }
      std::string why;
      const std::optional<Challenge> challenge = pending.handshake.challenge(*hello, why);
      if (!challenge) {
        return refuse(why);
      }
      if (!endpoint->send_control(encode(*challenge)).is_ok()) {
        return refuse("hung up during the handshake");
      }
      pending.step = Pending::Step::kProof;
      return;
    }
    case Pending::Step::kProof: {
      const auto* proof = std::get_if<Proof>(&message);
      if (proof == nullptr || !pending.handshake.verify(*proof)) {
        return refuse("failed authentication (wrong job key)");
      }
      pending.step = Pending::Step::kRegion;
      return;
    }
    case Pending::Step::kRegion: {
      const auto* region = std::get_if<Region>(&message);
      if (region == nullptr) {
        return refuse(fmt::format("sent {} instead of its region", message_name(message)));
      }
      const auto descriptor = tp::RegionDescriptor::decode(region->descriptor);
      if (!descriptor) {
        return refuse("sent a malformed region descriptor");
      }
      if (descriptor->length < plan_.image_bytes()) {
        return refuse(fmt::format("offers a {}-byte region for a {}-byte image", descriptor->length,
                                  plan_.image_bytes()));
      }
      if (region->resume_from > plan_.count()) {
        return refuse(fmt::format("asks to resume from chunk {} of a {}-chunk image",
                                  region->resume_from, plan_.count()));
      }
      const int rank = static_cast<int>(pending.handshake.peer_rank());
      // The same rank again (it lost us and came back, perhaps before we saw the old connection
      // fail): it proved it holds the key, so the new connection replaces the old one.
      for (auto& old : children_) {
        if (old->rank == rank && old->alive) {
          drop_child(*old, "reconnected");
        }
      }
      auto child = std::make_unique<Child>();
      child->rank = rank;
      child->next = region->resume_from;
      child->completed = region->resume_from;
      try {
        if (plan_.image_bytes() > 0) {
          child->remote = endpoint->import_region(*descriptor);
        }
      } catch (const tp::Error& error) {
        return refuse(error.what());
      }
      auto it = std::find_if(pending_.begin(), pending_.end(),
                             [endpoint](const auto& p) { return p->endpoint.get() == endpoint; });
      child->endpoint = std::move((*it)->endpoint);
      pending_.erase(it);
      child->endpoint->set_user_tag(children_.size() + 1);
      log().debug("rank {} serves child rank {} at {} from chunk {}", options_.rank, rank,
                  child->endpoint->peer_name(), child->next);
      children_.push_back(std::move(child));
      return;
    }
  }
}

void DataNode::on_parent_message(const Message& message) {
  if (const auto* refused = std::get_if<Failed>(&message); refused && parent_ready_) {
    lose_parent(fmt::format("{}: {}", parent_name_, refused->reason));
    return;
  }
  const auto* challenge = std::get_if<Challenge>(&message);
  if (parent_ready_ || challenge == nullptr) {
    lose_parent(fmt::format("{} sent an unexpected {}", parent_name_, message_name(message)));
    return;
  }
  const std::optional<Proof> proof = parent_handshake_->answer(*challenge);
  if (!proof) {
    fail(fmt::format("{} failed authentication: it does not hold this job's key", parent_name_));
    return;
  }
  // The region descriptor (our write key) goes out only after the parent proved itself.
  tp::RegionDescriptor descriptor;
  descriptor.length = 0;
  if (region_) {
    descriptor = region_->descriptor();
  }
  if (!parent_->send_control(encode(*proof)).is_ok() ||
      !parent_->send_control(encode(Region{descriptor.encode(), verified_})).is_ok()) {
    lose_parent(fmt::format("lost {} during the handshake", parent_name_));
    return;
  }
  parent_ready_ = true;
}

void DataNode::on_arrived(const tp::WriteArrived& arrived) {
  if (arrived.from != parent_.get() || failure_ || orphaned_) {
    return;  // Only the parent holds our write key; anything else was already refused.
  }
  // The transport checked the range against the region; the chunk index and length are
  // checked here against the plan, before anything trusts them.
  if (arrived.imm >= plan_.count()) {
    lose_parent(fmt::format("{} sent chunk {} of a {}-chunk image", parent_name_, arrived.imm,
                            plan_.count()));
    return;
  }
  const Chunk chunk = plan_.at(arrived.imm);
  if (arrived.length != chunk.length || landed_[chunk.index] != 0) {
    lose_parent(fmt::format("{} sent chunk {} twice or with the wrong length ({} bytes)",
                            parent_name_, chunk.index, arrived.length));
    return;
  }
  const auto bytes = image_.bytes().subspan(chunk.offset, chunk.length);
  // In order (the usual case): check the chunk and extend the image hash in one pass; a chunk
  // that fails leaves the image hash untouched.
  const bool next = chunk.index == verified_;
  const bool good = next ? hasher_.update_if_chunk_matches(bytes, arrived.notice)
                         : chunk_digest(bytes) == arrived.notice;
  if (!good) {
    ++refetched_;
    if (++bad_from_parent_ > kMaxBadChunksPerParent) {
      lose_parent(fmt::format("{} sent {} chunks that failed their xxh3-64 check", parent_name_,
                              bad_from_parent_));
      return;
    }
    log().warn("rank {}: chunk {} from {} failed its xxh3-64 check; asking for it again",
               options_.rank, chunk.index, parent_name_);
    if (!parent_->send_control(encode(Refetch{chunk.index})).is_ok()) {
      lose_parent(
          fmt::format("lost {} while asking for chunk {} again", parent_name_, chunk.index));
    }
    return;
  }
  SPDLOG_LOGGER_TRACE(&log(), "rank {} chunk {} landed", options_.rank, chunk.index);
  digests_[chunk.index] = arrived.notice;
  landed_[chunk.index] = 1;
  if (next)
    ++verified_;  // already hashed
  mark_verified(verified_);
}

void DataNode::mark_verified(std::uint32_t index) {
  if (index != verified_) {
    return;  // Out of order: joins the prefix when the gap closes.
  }
  while (verified_ < plan_.count() && landed_[verified_] != 0) {
    const Chunk chunk = plan_.at(verified_);
    hasher_.update(image_.bytes().subspan(chunk.offset, chunk.length));
    ++verified_;
  }
}

void DataNode::on_write_done(const tp::WriteDone& done) {
  Child* child = find_child(done.endpoint);
  if (child == nullptr) {
    return;
  }
  --child->in_flight;
  if (!done.status.is_ok()) {
    drop_child(*child, done.status.to_string());
    return;
  }
  if ((done.cookie & kResendBit) == 0) {
    ++child->completed;
  }
}

void DataNode::on_peer_failed(tp::Endpoint* peer, const tp::Status& status) {
  if (peer == parent_.get()) {
    if (!complete()) {
      lose_parent(fmt::format("lost {} after {} of {} chunks: {}", parent_name_, verified_,
                              plan_.count(), status.to_string()));
    }
    return;
  }
  if (Child* child = find_child(peer)) {
    drop_child(*child, status.to_string());
    return;
  }
  std::erase_if(pending_, [peer](const auto& p) { return p->endpoint.get() == peer; });
}

bool DataNode::pump() {
  bool more = false;
  if (source_ != nullptr && !failure_) {
    more = read_next_chunk();
  }
  for (auto& child : children_) {
    forward(*child);
  }
  return more;
}

bool DataNode::read_next_chunk() {
  if (read_ == plan_.count()) {
    return false;
  }
  // Read ahead of the fastest live child by at most read_ahead chunks: the data sits in the
  // staging mapping either way, but reading far ahead would starve the send loop (and chunks
  // forwarded soon after they are read are still in cache). The fastest, not the slowest: a
  // stalled child must not hold back the others, nor the root's own copy.
  std::uint32_t fastest = 0;
  bool any_child = false;
  for (const auto& child : children_) {
    if (child->alive) {
      fastest = std::max(fastest, child->completed);
      any_child = true;
    }
  }
  if (pace_reads_ && any_child && read_ > fastest && read_ - fastest >= options_.read_ahead) {
    return false;
  }
  const Chunk chunk = plan_.at(read_);
  const auto bytes = image_.bytes().subspan(chunk.offset, chunk.length);
  try {
    source_->read(chunk, bytes);
  } catch (const ImgcastError& error) {
    fail(error.what());
    return false;
  }
  // The root reads in order: both hashes in one pass (see on_arrived).
  const bool next = chunk.index == verified_;
  digests_[chunk.index] = next ? hasher_.update_and_digest_chunk(bytes) : chunk_digest(bytes);
  landed_[chunk.index] = 1;
  ++read_;
  if (next)
    ++verified_;
  mark_verified(verified_);
  return read_ < plan_.count();
}

void DataNode::forward(Child& child) {
  while (child.alive && child.in_flight < options_.window) {
    // Chunks asked for again go first: the child's verified prefix waits on them.
    const bool again = !child.resend.empty();
    if (!again && child.next >= verified_) {
      return;
    }
    const Chunk chunk = plan_.at(again ? child.resend.front() : child.next);
    tp::WriteRequest request;
    request.source = region_.get();
    request.source_offset = chunk.offset;
    request.target = child.remote.get();
    request.target_offset = chunk.offset;
    request.length = chunk.length;
    request.imm = chunk.index;
    request.notice = digests_[chunk.index];
    request.cookie = chunk.index | (again ? kResendBit : 0);
    const tp::Status status = child.endpoint->post_write(request);
    if (status.code() == tp::StatusCode::kBusy) {
      return;
    }
    if (!status.is_ok()) {
      drop_child(child, status.to_string());
      return;
    }
    if (again) {
      child.resend.erase(child.resend.begin());
    } else {
      ++child.next;
    }
    ++child.in_flight;
  }
}

void DataNode::fail(std::string reason) {
  if (!failure_) {
    log().error("rank {}: {}", options_.rank, reason);
    failure_ = std::move(reason);
  }
}

void DataNode::lose_parent(std::string reason) {
  if (failure_ || orphaned_ || complete()) {
    return;
  }
  log().warn("rank {}: {}; asking for a new parent", options_.rank, reason);
  parent_ready_ = false;
  orphaned_ = std::move(reason);
}

void DataNode::drop_child(Child& child, const std::string& reason) {
  if (child.alive) {
    log().warn("rank {} stops serving child rank {}: {}", options_.rank, child.rank, reason);
    child.alive = false;
  }
}

DataNode::Child* DataNode::find_child(tp::Endpoint* endpoint) noexcept {
  const std::uint64_t tag = endpoint->user_tag();
  if (tag == 0 || tag > children_.size()) {
    return nullptr;
  }
  Child* child = children_[tag - 1].get();
  return child->endpoint.get() == endpoint ? child : nullptr;
}

DataNode::Pending* DataNode::find_pending(tp::Endpoint* endpoint) noexcept {
  for (auto& p : pending_) {
    if (p->endpoint.get() == endpoint) {
      return p.get();
    }
  }
  return nullptr;
}

}  // namespace imgcast::replicator
