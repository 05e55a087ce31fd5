// Downstream: a node's children, the peers it feeds. It serves a peer the data channel's
// Admission let in once its Region passes (a child of ours in that tree, a sound descriptor that
// covers the image, a resume point inside it), writes each child the chunks of its tree as soon
// as the ledger has them (at most `window` writes in flight per child, chunks asked for again
// first), and stops serving a child that fails or misbehaves. Peers it refused stay open until
// the node ends, so they hear why.
//
// Created and owned by DataNode, which hands it the events that name a child; used only from the
// thread that drives the DataNode. It only reads the ledger.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "replicator/pipeline/chunk_ledger.h"
#include "replicator/pipeline/data_node_options.h"
#include "replicator/protocol/admission.h"
#include "transport/completion.h"
#include "transport/memory_region.h"

namespace imgcast::replicator {

class Downstream {
 public:
  // `own_region`: our staging mapping registered for reading (what the writes are sent from;
  // null for an empty image). All of them must outlive the Downstream.
  Downstream(const DataNodeOptions& options, const ChunkLedger& ledger,
             const transport::MemoryRegion* own_region);
  ~Downstream();
  Downstream(const Downstream&) = delete;
  Downstream& operator=(const Downstream&) = delete;

  // Expect the node at `data_rank` in `tree` too (the root chose us as its new parent).
  void adopt(int data_rank, int tree);
  // Serves `peer` if its Region asks for a tree in which it is our child; otherwise it is sent
  // Failed with the reason and parked.
  void serve(AdmittedPeer peer);

  // Each takes an event if it names a child or a refused peer: false otherwise.
  bool on_control(transport::Endpoint* from, std::span<const std::byte> bytes);
  bool on_peer_failed(transport::Endpoint* peer, const transport::Status& status);
  // A completion for an endpoint that is not a child's is ignored.
  void on_write_done(const transport::WriteDone& done);

  // Posts every child what the ledger has for it, as far as its window allows.
  void forward_all();

  // For the root's read pacing. The next chunk a live child could be sent now (room in its
  // window) that has not landed and is below `limit`: the one it waits for.
  std::optional<std::uint32_t> chunk_awaited(std::uint64_t limit) const noexcept;
  // The live children's furthest progress, in image chunks: the most writes any of them
  // completed in order, times the trees (each is sent every trees-th chunk). 0 with none.
  std::uint64_t fastest_progress() const noexcept;
  std::size_t live_children() const noexcept { return live_; }
  // Children are expected but none has connected yet.
  bool first_child_due() const noexcept { return children_.empty() && !expected_.empty(); }

 private:
  struct Child;

  void on_message(Child& child, const Message& message);
  // Why a child's Region cannot be served ("" when it can).
  std::string refusal(std::uint32_t rank, const Region& region,
                      const std::optional<transport::RegionDescriptor>& descriptor) const;
  void forward(Child& child);
  void drop(Child& child, const std::string& reason);
  Child* find(transport::Endpoint* endpoint) noexcept;
  bool refused(const transport::Endpoint* endpoint) const noexcept;

  const DataNodeOptions& options_;
  const std::size_t window_;  // options_.window, beside the state the send loop reads
  const ChunkLedger& ledger_;
  const transport::MemoryRegion* own_region_;
  // (data rank, tree) of every child this node may serve.
  std::vector<std::pair<int, int>> expected_;
  // Every child ever served, by endpoint tag - 1 (a dropped one stays, no longer alive).
  std::vector<std::unique_ptr<Child>> children_;
  std::size_t live_ = 0;  // children still alive
  // Authenticated peers this node refused, kept open until the node ends so they get the reason.
  std::vector<std::unique_ptr<transport::Endpoint>> refused_;
};

}  // namespace imgcast::replicator
