#include "replicator/pipeline/data_node.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "replicator/errors.h"
#include "replicator/log.h"
#include "replicator/protocol/messages.h"
#include "transport/error.h"

namespace imgcast::replicator {

namespace tp = transport;
using Clock = std::chrono::steady_clock;

namespace {
// Endpoint tags: 1..N are children (index + 1); parents and refused peers are found otherwise.
constexpr std::uint64_t kParentTag = ~std::uint64_t{0};
// A write's cookie is its chunk index; this bit marks a chunk sent again (Refetch), which does
// not advance the child's in-order count.
constexpr std::uint64_t kResendBit = std::uint64_t{1} << 63;
}  // namespace

// The link to the parent of one tree.
struct DataNode::Parent {
  int tree = 0;
  std::unique_ptr<tp::Endpoint> endpoint;
  std::unique_ptr<InitiatorHandshake> handshake;
  std::string name;
  bool ready = false;
  std::uint32_t bad_chunks = 0;      // corrupt chunks from this parent
  Clock::time_point last_arrival{};  // its last chunk (or the connection), for the stall check
  std::optional<std::string> lost;   // set: given up on, waiting for reparent()
};

struct DataNode::Child {
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

DataNode::DataNode(tp::Context& data, const DataNodeOptions& options, StagedImage& image)
    : data_(data),
      options_(options),
      ledger_(ChunkPlan(options.image_bytes, options.chunk_bytes), options.topology->trees(), image,
              options.rank),
      image_(image) {
  if (!image_.bytes().empty()) {
    // The root only sends from its copy: no peer may write into it, and RDMA then pins it for
    // reading only.
    const bool root = options_.rank == options_.topology->root();
    region_ = data_.register_memory(image_.bytes(),
                                    root ? tp::Access::kLocalRead : tp::Access::kReadWrite);
  }
  for (int tree = 0; tree < ledger_.trees(); ++tree) {
    for (int child : options_.topology->children(options_.rank, tree)) {
      expected_children_.emplace_back(child, tree);
    }
    if (options_.rank != options_.topology->root()) {
      parents_.push_back(std::make_unique<Parent>());
      parents_.back()->tree = tree;
    }
  }
}

DataNode::~DataNode() = default;

const std::optional<std::string>& DataNode::orphaned(int tree) const noexcept {
  static const std::optional<std::string> kNone;
  return tree >= 0 && tree < static_cast<int>(parents_.size()) ? parents_[tree]->lost : kNone;
}

void DataNode::connect_to_parent(int tree, std::span<const std::byte> address,
                                 std::chrono::milliseconds timeout,
                                 const std::string& parent_name) {
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

void DataNode::use_source(const ImageSource& source) {
  std::uint64_t ahead_bytes = options_.read_ahead_bytes;
  if (ahead_bytes == 0) {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page_bytes = ::sysconf(_SC_PAGESIZE);
    const std::uint64_t memory = pages > 0 && page_bytes > 0
                                     ? static_cast<std::uint64_t>(pages) * page_bytes
                                     : std::uint64_t{2} << 30;
    ahead_bytes = std::max<std::uint64_t>(memory / 8, 256ull << 20);
  }
  read_ahead_chunks_ = std::max<std::uint64_t>(options_.read_ahead_before_children,
                                               ahead_bytes / ledger_.plan().chunk_bytes());
  // Woken at the limit only once a quarter of the read-ahead is free again.
  reader_ = std::make_unique<SourceReader>(source, ledger_.plan(), image_.bytes(),
                                           ledger_.reader_digests(), ledger_.reader_hasher(),
                                           static_cast<std::uint32_t>(read_ahead_chunks_ / 4));
}

void DataNode::adopt(int data_rank, int tree) {
  const std::pair<int, int> entry{data_rank, tree};
  if (std::find(expected_children_.begin(), expected_children_.end(), entry) ==
      expected_children_.end()) {
    expected_children_.push_back(entry);
  }
}

void DataNode::abandon_parent(int tree, std::string reason) {
  lose_parent(*parents_.at(tree), std::move(reason));
}

void DataNode::abandon_silent_parents(Clock::time_point now, std::chrono::milliseconds timeout) {
  for (auto& parent : parents_) {
    if (!parent->lost && now - parent->last_arrival > timeout &&
        ledger_.tree_missing_chunks(parent->tree)) {
      lose_parent(*parent, fmt::format("no data from {} for {:.1f} s", parent->name,
                                       static_cast<double>(timeout.count()) / 1000));
    }
  }
}

void DataNode::reparent(int tree, std::span<const std::byte> address,
                        std::chrono::milliseconds timeout, const std::string& parent_name) {
  Parent& parent = *parents_.at(tree);
  // Between two batches of completions (the owner's loop), so no event names the old endpoint.
  parent.endpoint.reset();
  parent.handshake.reset();
  parent.ready = false;
  parent.bad_chunks = 0;
  // This tree's chunks past the verified prefix may be half-written by the old parent (or landed
  // out of order): the new parent sends all of them again, so none arrives twice.
  ledger_.forget_unverified(tree);
  connect_to_parent(tree, address, timeout, parent_name);
  parent.lost.reset();
}

bool DataNode::handle(tp::Completion& completion) {
  return std::visit(
      [this](auto& event) {
        using T = std::decay_t<decltype(event)>;
        if constexpr (std::is_same_v<T, tp::ControlArrived>) {
          return on_control(event.from, event.bytes);
        } else if constexpr (std::is_same_v<T, tp::WriteArrived>) {
          on_arrived(event);
          return true;
        } else if constexpr (std::is_same_v<T, tp::WriteDone>) {
          on_write_done(event);
          return true;
        } else if constexpr (std::is_same_v<T, tp::PeerFailed>) {
          return on_peer_failed(event.peer, event.status);
        } else {
          return false;  // PeerAccepted: the data channel's Admission takes those
        }
      },
      completion);
}

bool DataNode::on_control(tp::Endpoint* from, std::span<const std::byte> bytes) {
  if (Parent* parent = find_parent(from)) {
    if (parent->lost) {
      return true;  // given up on: it is replaced at the next reparent()
    }
    const std::optional<Message> message = decode(bytes);
    if (!message) {
      lose_parent(*parent, fmt::format("{} sent a malformed message", parent->name));
      return true;
    }
    on_parent_message(*parent, *message);
    return true;
  }
  if (Child* child = find_child(from)) {
    const std::optional<Message> message = decode(bytes);
    if (!message) {
      drop_child(*child, "sent a malformed message");
      return true;
    }
    on_child_message(*child, *message);
    return true;
  }
  // A peer we refused after its proof, which may still talk: it was told why.
  return std::any_of(refused_.begin(), refused_.end(),
                     [from](const auto& e) { return e.get() == from; });
}

void DataNode::on_child_message(Child& child, const Message& message) {
  const auto* refetch = std::get_if<Refetch>(&message);
  if (refetch == nullptr) {
    drop_child(child, fmt::format("sent {} on a data channel that carries only Refetch after the "
                                  "handshake",
                                  message_name(message)));
    return;
  }
  // Only a chunk of its tree already sent can be asked for again, and the queue stays bounded:
  // a child that asks for more is broken (or hostile), not unlucky.
  if (refetch->index >= child.next || ledger_.tree_of(refetch->index) != child.tree) {
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

void DataNode::serve(AdmittedPeer peer) {
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
    // stays open (parked) so the refusal is delivered on every transport. Failure to send it is
    // the peer's loss alone: it then sees the connection close with this node.
    (void)peer.endpoint->send_control(
        encode(Failed{2, fmt::format("rank {} refused this node: {}", options_.rank, why)}));
    refused_.push_back(std::move(peer.endpoint));
    return;
  }
  const int rank = static_cast<int>(peer.rank);
  const int tree = region->tree;
  // The same rank again in the same tree (it lost us and came back, perhaps before we saw the
  // old connection fail): it proved it holds the key, so the new connection replaces the old one.
  for (auto& old : children_) {
    if (old->rank == rank && old->tree == tree && old->alive) {
      drop_child(*old, "reconnected");
    }
  }
  auto child = std::make_unique<Child>();
  child->rank = rank;
  child->tree = tree;
  // Its first chunk of its tree at or after resume_from.
  child->next = region->resume_from +
                (tree - ledger_.tree_of(region->resume_from) + ledger_.trees()) % ledger_.trees();
  child->completed = child->next / ledger_.trees();
  child->remote = std::move(remote);
  child->endpoint = std::move(peer.endpoint);
  child->endpoint->set_user_tag(children_.size() + 1);
  log().debug("rank {} serves child rank {} at {} from chunk {}{}", options_.rank, rank,
              child->endpoint->peer_name(), child->next,
              ledger_.trees() > 1 ? fmt::format(" (tree {})", tree) : std::string());
  children_.push_back(std::move(child));
}

std::string DataNode::refusal(std::uint32_t rank, const Region& region,
                              const std::optional<tp::RegionDescriptor>& descriptor) const {
  if (std::none_of(expected_children_.begin(), expected_children_.end(),
                   [rank](const auto& entry) { return entry.first == static_cast<int>(rank); })) {
    return fmt::format("claims rank {}, which is not a child of rank {}", rank, options_.rank);
  }
  if (!descriptor) {
    return "sent a malformed region descriptor";
  }
  if (descriptor->length < ledger_.plan().image_bytes()) {
    return fmt::format("offers a {}-byte region for a {}-byte image", descriptor->length,
                       ledger_.plan().image_bytes());
  }
  if (region.resume_from > ledger_.plan().count()) {
    return fmt::format("asks to resume from chunk {} of a {}-chunk image", region.resume_from,
                       ledger_.plan().count());
  }
  if (std::find(expected_children_.begin(), expected_children_.end(),
                std::pair<int, int>{static_cast<int>(rank), region.tree}) ==
      expected_children_.end()) {
    return fmt::format("asks for tree {}, in which rank {} is not its parent", region.tree,
                       options_.rank);
  }
  return {};
}

void DataNode::on_parent_message(Parent& parent, const Message& message) {
  if (const auto* refused = std::get_if<Failed>(&message); refused && parent.ready) {
    lose_parent(parent, fmt::format("{}: {}", parent.name, refused->reason));
    return;
  }
  const auto* challenge = std::get_if<Challenge>(&message);
  if (parent.ready || challenge == nullptr) {
    lose_parent(parent,
                fmt::format("{} sent an unexpected {}", parent.name, message_name(message)));
    return;
  }
  const std::optional<Proof> proof = parent.handshake->answer(*challenge);
  if (!proof) {
    ledger_.fail(
        fmt::format("{} failed authentication: it does not hold this job's key", parent.name));
    return;
  }
  // The region descriptor (our write key) goes out only after the parent proved itself.
  tp::RegionDescriptor descriptor;
  descriptor.length = 0;
  if (region_) {
    descriptor = region_->descriptor();
  }
  const Region region{descriptor.encode(), ledger_.verified(),
                      static_cast<std::uint8_t>(parent.tree)};
  if (!parent.endpoint->send_control(encode(*proof)).is_ok() ||
      !parent.endpoint->send_control(encode(region)).is_ok()) {
    lose_parent(parent, fmt::format("lost {} during the handshake", parent.name));
    return;
  }
  parent.ready = true;
}

void DataNode::on_arrived(const tp::WriteArrived& arrived) {
  Parent* parent = find_parent(arrived.from);
  if (parent == nullptr || parent->lost || ledger_.failure()) {
    return;  // Only our parents hold our write key; anything else was already refused.
  }
  // The transport checked the range against the region; the chunk index and length are
  // checked here against the plan, before anything trusts them.
  if (arrived.imm >= ledger_.plan().count() || ledger_.tree_of(arrived.imm) != parent->tree) {
    lose_parent(*parent, fmt::format("{} sent chunk {} of a {}-chunk image, not one of its tree",
                                     parent->name, arrived.imm, ledger_.plan().count()));
    return;
  }
  const Chunk chunk = ledger_.plan().at(arrived.imm);
  if (arrived.length != chunk.length || ledger_.landed(chunk.index)) {
    lose_parent(*parent, fmt::format("{} sent chunk {} twice or with the wrong length ({} bytes)",
                                     parent->name, chunk.index, arrived.length));
    return;
  }
  parent->last_arrival = Clock::now();
  if (!ledger_.land_if_intact(chunk, arrived.notice)) {
    ++refetched_;
    if (++parent->bad_chunks > kMaxBadChunksPerParent) {
      lose_parent(*parent, fmt::format("{} sent {} chunks that failed their xxh3-64 check",
                                       parent->name, parent->bad_chunks));
      return;
    }
    log().warn("rank {}: chunk {} from {} failed its xxh3-64 check; asking for it again",
               options_.rank, chunk.index, parent->name);
    if (!parent->endpoint->send_control(encode(Refetch{chunk.index})).is_ok()) {
      lose_parent(*parent, fmt::format("lost {} while asking for chunk {} again", parent->name,
                                       chunk.index));
    }
    return;
  }
  SPDLOG_LOGGER_TRACE(&log(), "rank {} chunk {} landed", options_.rank, chunk.index);
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

bool DataNode::on_peer_failed(tp::Endpoint* peer, const tp::Status& status) {
  if (Parent* parent = find_parent(peer)) {
    // lose_parent ignores a parent that owes us nothing more.
    lose_parent(*parent, fmt::format("lost {} after {} of {} chunks: {}", parent->name,
                                     ledger_.verified(), ledger_.count(), status.to_string()));
    return true;
  }
  if (Child* child = find_child(peer)) {
    drop_child(*child, status.to_string());
    return true;
  }
  return std::any_of(refused_.begin(), refused_.end(),
                     [peer](const auto& e) { return e.get() == peer; });
}

std::chrono::milliseconds DataNode::pump() {
  // Nothing to do until an event comes: the owner's own upper bound applies.
  constexpr std::chrono::milliseconds kIdle = std::chrono::milliseconds::max();
  // How long a waiting root gives its reading thread to read the next chunk before it reads
  // it itself: a thread that reads nothing for that long has no core to run on.
  constexpr std::chrono::milliseconds kReaderPatience{1};
  if (reader_ && !ledger_.failure()) {
    take_read_chunks();
  }
  forward_all();
  const std::optional<std::uint32_t> wanted =
      reader_ && !ledger_.failure() ? chunk_wanted() : std::nullopt;
  if (!wanted) {
    return kIdle;
  }
  const auto now = Clock::now();
  if (const std::uint32_t moved = reader_->read_by_thread(); moved != reader_seen_) {
    reader_seen_ = moved;
    reader_seen_at_ = now;
  } else if (now - reader_seen_at_ >= kReaderPatience) {
    const std::uint32_t before = read_;
    reader_->read_here(*wanted);
    take_read_chunks();
    forward_all();
    if (read_ != before) {
      return std::chrono::milliseconds(0);  // and again, while the thread stays still
    }
  }
  return kReaderPatience;
}

std::optional<std::uint32_t> DataNode::chunk_wanted() const noexcept {
  if (read_ == ledger_.plan().count()) {
    return std::nullopt;
  }
  bool any_child = false;
  for (const auto& child : children_) {
    if (!child->alive)
      continue;
    any_child = true;
    const std::uint64_t index = child->resend.empty() ? child->next : child->resend.front();
    if (child->in_flight < options_.window && index < read_limit_ && !ledger_.landed(index)) {
      return static_cast<std::uint32_t>(index);
    }
  }
  if (!any_child && !first_child_due()) {
    return read_;  // nobody left to feed but our own copy
  }
  return std::nullopt;
}

void DataNode::take_read_chunks() {
  reader_->drain();
  if (reader_->failed()) {
    ledger_.fail(reader_->error());
    return;
  }
  read_ = reader_->ready();
  ledger_.land_read(read_);
  // Let it read ahead of the fastest live child by up to read_ahead_bytes. Far: reading done
  // early leaves the cores to the sends (1 GiB on loopback, largest node time: 16 chunks ahead
  // 0.46 s, 256 MiB 0.41-0.43 s, unbounded 0.38-0.41 s). Bounded: an image larger than memory
  // must still be sent while its pages are cached.
  // The fastest child, not the slowest: a stalled child must not hold back the others, nor the
  // root's own copy. A child's progress in image chunks is its completed writes times the trees
  // (it is sent every trees-th chunk). Before the first child has connected, only a few chunks:
  // reading the whole image then would take the CPU from the handshakes.
  std::uint64_t fastest = 0;
  bool any_child = false;
  for (const auto& child : children_) {
    if (child->alive) {
      fastest = std::max(fastest, child->completed * ledger_.trees());
      any_child = true;
    }
  }
  const bool before_children = first_child_due();
  const std::uint64_t ahead =
      before_children ? options_.read_ahead_before_children : read_ahead_chunks_;
  const std::uint64_t limit = pace_reads_ && (any_child || before_children)
                                  ? std::min<std::uint64_t>(fastest + ahead, ledger_.plan().count())
                                  : ledger_.plan().count();
  read_limit_ = static_cast<std::uint32_t>(limit);
  reader_->allow(read_limit_);
}

void DataNode::forward_all() {
  for (auto& child : children_) {
    forward(*child);
  }
}

void DataNode::forward(Child& child) {
  while (child.alive && child.in_flight < options_.window) {
    // Chunks asked for again go first: the child's verified prefix waits on them. Otherwise the
    // child's next chunk of its tree, as soon as it has landed here and been checked.
    const bool again = !child.resend.empty();
    const std::uint64_t index = again ? child.resend.front() : child.next;
    if (index >= ledger_.count() || !ledger_.landed(index)) {
      return;  // not here yet (or being sent again to us by a new parent)
    }
    const Chunk chunk = ledger_.plan().at(static_cast<std::uint32_t>(index));
    tp::WriteRequest request;
    request.source = region_.get();
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
      drop_child(child, status.to_string());
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

void DataNode::lose_parent(Parent& parent, std::string reason) {
  if (ledger_.failure() || parent.lost || !ledger_.tree_missing_chunks(parent.tree)) {
    return;
  }
  log().warn("rank {}: {}; asking for a new parent", options_.rank, reason);
  parent.ready = false;
  parent.lost = std::move(reason);
}

void DataNode::drop_child(Child& child, const std::string& reason) {
  if (child.alive) {
    log().warn("rank {} stops serving child rank {}: {}", options_.rank, child.rank, reason);
    child.alive = false;
  }
}

DataNode::Parent* DataNode::find_parent(tp::Endpoint* endpoint) noexcept {
  for (auto& parent : parents_) {
    if (parent->endpoint.get() == endpoint && endpoint != nullptr)
      return parent.get();
  }
  return nullptr;
}

DataNode::Child* DataNode::find_child(tp::Endpoint* endpoint) noexcept {
  const std::uint64_t tag = endpoint->user_tag();
  if (tag == 0 || tag > children_.size()) {
    return nullptr;
  }
  Child* child = children_[tag - 1].get();
  return child->endpoint.get() == endpoint ? child : nullptr;
}

}  // namespace imgcast::replicator
