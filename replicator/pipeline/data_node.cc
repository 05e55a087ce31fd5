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

DataNode::DataNode(tp::Context& data, const DataNodeOptions& options, StagedImage& image)
    : data_(data),
      options_(options),
      ledger_(ChunkPlan(options.image_bytes, options.chunk_bytes), options.topology->trees(), image,
              options.rank),
      image_(image),
      region_(register_mapping(data, options_, image)),
      downstream_(options_, ledger_, region_.get()),
      upstream_(data, options_, ledger_, region_.get()) {}

DataNode::~DataNode() = default;

void DataNode::connect_to_parent(int tree, std::span<const std::byte> address,
                                 std::chrono::milliseconds timeout,
                                 const std::string& parent_name) {
  upstream_.connect(tree, address, timeout, parent_name);
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

bool DataNode::handle(tp::Completion& completion) {
  return std::visit(
      [this](auto& event) {
        using T = std::decay_t<decltype(event)>;
        if constexpr (std::is_same_v<T, tp::ControlArrived>) {
          return upstream_.on_control(event.from, event.bytes) ||
                 downstream_.on_control(event.from, event.bytes);
        } else if constexpr (std::is_same_v<T, tp::WriteArrived>) {
          upstream_.on_arrived(event);
          return true;
        } else if constexpr (std::is_same_v<T, tp::WriteDone>) {
          downstream_.on_write_done(event);
          return true;
        } else if constexpr (std::is_same_v<T, tp::PeerFailed>) {
          return upstream_.on_peer_failed(event.peer, event.status) ||
                 downstream_.on_peer_failed(event.peer, event.status);
        } else {
          return false;  // PeerAccepted: the data channel's Admission takes those
        }
      },
      completion);
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

}  // namespace imgcast::replicator
