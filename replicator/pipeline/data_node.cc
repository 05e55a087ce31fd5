#include "replicator/pipeline/data_node.h"

namespace imgcast::replicator {

namespace tp = transport;

namespace {

// Whether an agent's parents write through its staging file rather than its mapping: over TCP
// (which splices the payload from the socket into the file) into a copy kept in memory (tmpfs, a
// memfd), where the pages then need no zeroing and no page-table entries. Not on a disk: there
// the write can block in the kernel's dirty-page throttling, and it runs on the thread that
// receives, so the link would stall with it (case 3 on ext4: 1.99 -> 2.38 s). Not over RDMA
// (nor under --transport auto, whose links are RDMA unless they fall back): those write into
// the mapping.
bool writes_through_file(const tp::Context& data, const StagedImage& image) {
  return data.kind() == tp::Kind::kTcp && image.in_memory();
}

// Every node sends from its copy; an agent's parents write into it too, through a registration
// of its own that freeze() drops while the children are still being served. The root's copy is
// never written by a peer: it has no write registration, and RDMA pins it for reading only.
std::unique_ptr<tp::MemoryRegion> register_mapping(tp::Context& data,
                                                   const DataNodeOptions& options,
                                                   StagedImage& image, tp::Access access) {
  const bool root = options.rank == options.topology->root();
  if (image.bytes().empty() || (root && access == tp::Access::kRemoteWrite)) {
    return nullptr;
  }
  const bool through_file = access == tp::Access::kRemoteWrite && writes_through_file(data, image);
  return data.register_memory(image.bytes(), access, through_file ? image.file_descriptor() : -1);
}

// A page runner for what it has to do, or none: data that comes through the file into a copy
// kept in memory needs nothing allocated or mapped ahead and nothing written back.
std::unique_ptr<PageRunner> make_page_runner(StagedImage& image, bool through_file) {
  if (image.bytes().empty() || (through_file && image.in_memory())) {
    return nullptr;
  }
  return std::make_unique<PageRunner>(image, through_file ? PageRunner::Arrival::kThroughFile
                                                          : PageRunner::Arrival::kThroughMapping);
}

}  // namespace

DataNode::DataNode(tp::Context& data, const DataNodeOptions& options, StagedImage& image)
    : options_(options),
      ledger_(ChunkPlan(options.image_bytes, options.chunk_bytes), options.topology->trees(), image,
              options.rank),
      // The root's runner starts with its source (use_source), which says how the data comes.
      pages_(options.rank == options.topology->root()
                 ? nullptr
                 : make_page_runner(image, writes_through_file(data, image))),
      source_region_(register_mapping(data, options_, image, tp::Access::kLocalRead)),
      write_region_(register_mapping(data, options_, image, tp::Access::kRemoteWrite)),
      downstream_(options_, ledger_, source_region_.get()),
      upstream_(data, options_, ledger_, write_region_.get()) {}

DataNode::~DataNode() = default;

void DataNode::connect_to_parent(int tree, std::span<const std::byte> address,
                                 std::chrono::milliseconds timeout,
                                 const std::string& parent_name) {
  upstream_.connect(tree, address, timeout, parent_name);
}

ImageDigest DataNode::freeze() {
  if (!frozen_digest_) {
    stop_pages();
    upstream_.freeze();
    write_region_.reset();
    // From here no peer can change the mapping: what it holds now is what gets placed.
    ImageHasher again;
    again.update(ledger_.bytes());
    frozen_digest_ = again.digest();
  }
  return *frozen_digest_;
}

void DataNode::use_source(const ChunkSource& source) {
  // An image file is copied into our staging file by the kernel: the pages are not mapped ahead
  // (the copy would not use the entries and zeroing) and the reader hashes through the mapping.
  const bool through_file = source.copies_in_kernel();
  pages_ = make_page_runner(ledger_.image(), through_file);
  feed_ = std::make_unique<RootFeed>(source, options_, ledger_, downstream_, through_file);
  if (!pace_reads_) {
    feed_->stop_pacing();
  }
}

void DataNode::stop_pacing() noexcept {
  pace_reads_ = false;
  if (feed_) {
    feed_->stop_pacing();
  }
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

void DataNode::follow_pages() {
  if (!pages_) {
    return;
  }
  pages_->advance(ledger_.bytes_verified());
  if (auto failure = pages_->failure()) {
    ledger_.fail(std::move(*failure));
    pages_.reset();
  } else if (ledger_.complete()) {
    pages_.reset();  // every byte is here: nothing left to allocate, and see stop_pages()
  }
}

std::chrono::milliseconds DataNode::pump() {
  // Nothing to do until an event comes: the owner's own upper bound applies.
  constexpr std::chrono::milliseconds kIdle = std::chrono::milliseconds::max();
  if (feed_ && !ledger_.failure()) {
    feed_->take();
  }
  downstream_.forward_all();
  follow_pages();
  const std::optional<std::uint32_t> wanted =
      feed_ && !ledger_.failure() ? feed_->chunk_wanted() : std::nullopt;
  if (!wanted) {
    return kIdle;
  }
  const std::uint32_t before = feed_->chunks_read();
  if (feed_->read_here_if_stalled(*wanted, std::chrono::steady_clock::now())) {
    downstream_.forward_all();
    if (feed_->chunks_read() != before) {
      return std::chrono::milliseconds(0);  // and again, while the thread stays still
    }
  }
  return RootFeed::kReaderPatience;
}

}  // namespace imgcast::replicator
