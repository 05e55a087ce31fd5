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
// A parent's endpoint tag. Downstream tags its children 1..N and finds them by tag; a parent is
// found by its endpoint, and this tag (never a child's) keeps it from being taken for one.
constexpr std::uint64_t kParentTag = ~std::uint64_t{0};

// The root only sends from its copy: no peer may write into it, and RDMA then pins it for
// reading only.
std::unique_ptr<tp::MemoryRegion> register_mapping(tp::Context& data,
                                                   const DataNodeOptions& options,
                                                   StagedImage& image) {
  if (image.bytes().empty()) {
    return nullptr;
  }
  const bool root = options.rank == options.topology->root();
  return data.register_memory(image.bytes(),
                              root ? tp::Access::kLocalRead : tp::Access::kReadWrite);
}
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

DataNode::DataNode(tp::Context& data, const DataNodeOptions& options, StagedImage& image)
    : data_(data),
      options_(options),
      ledger_(ChunkPlan(options.image_bytes, options.chunk_bytes), options.topology->trees(), image,
              options.rank),
      image_(image),
      region_(register_mapping(data, options_, image)),
      downstream_(options_, ledger_, region_.get()) {
  for (int tree = 0; tree < ledger_.trees(); ++tree) {
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
          downstream_.on_write_done(event);
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
  return downstream_.on_control(from, bytes);
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

bool DataNode::on_peer_failed(tp::Endpoint* peer, const tp::Status& status) {
  if (Parent* parent = find_parent(peer)) {
    // lose_parent ignores a parent that owes us nothing more.
    lose_parent(*parent, fmt::format("lost {} after {} of {} chunks: {}", parent->name,
                                     ledger_.verified(), ledger_.count(), status.to_string()));
    return true;
  }
  return downstream_.on_peer_failed(peer, status);
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
  downstream_.forward_all();
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
    downstream_.forward_all();
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
  if (const auto awaited = downstream_.chunk_awaited(read_limit_)) {
    return awaited;
  }
  if (downstream_.live_children() == 0 && !downstream_.first_child_due()) {
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
  const bool before_children = downstream_.first_child_due();
  const std::uint64_t ahead =
      before_children ? options_.read_ahead_before_children : read_ahead_chunks_;
  const std::uint64_t limit =
      pace_reads_ && (downstream_.live_children() > 0 || before_children)
          ? std::min<std::uint64_t>(downstream_.fastest_progress() + ahead, ledger_.count())
          : ledger_.count();
  read_limit_ = static_cast<std::uint32_t>(limit);
  reader_->allow(read_limit_);
}

void DataNode::lose_parent(Parent& parent, std::string reason) {
  if (ledger_.failure() || parent.lost || !ledger_.tree_missing_chunks(parent.tree)) {
    return;
  }
  log().warn("rank {}: {}; asking for a new parent", options_.rank, reason);
  parent.ready = false;
  parent.lost = std::move(reason);
}

DataNode::Parent* DataNode::find_parent(tp::Endpoint* endpoint) noexcept {
  for (auto& parent : parents_) {
    if (parent->endpoint.get() == endpoint && endpoint != nullptr)
      return parent.get();
  }
  return nullptr;
}

}  // namespace imgcast::replicator
