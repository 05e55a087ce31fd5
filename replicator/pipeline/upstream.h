// Upstream: a node's links to its parents, one per tree of the topology (two for the two-tree
// broadcast; none on the root). It opens each link (the initiator's side of the data channel's
// handshake, then the Region that hands the parent our write key), checks every chunk a parent
// writes before the ledger takes it (from that parent, of its tree, the plan's length, not seen
// yet, its xxh3-64), asks again for a corrupt one (Refetch, at most kMaxBadChunksPerParent per
// parent), and gives up on a parent that dies, stalls, misbehaves or keeps corrupting: the node is
// then an orphan in that tree until reparent().
//
// Write authority: our region accepts writes only from the link to a parent that proved itself
// (allow_writer once its Challenge checks out, revoke_writer when it is replaced or given up on),
// so a peer that read the key off the wire cannot write on a connection of its own. freeze() ends
// it all once every chunk is verified.
//
// Created and owned by DataNode, which hands it the events that name a parent; used only from
// the thread that drives the DataNode.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "replicator/pipeline/chunk_ledger.h"
#include "replicator/pipeline/data_node_options.h"
#include "replicator/protocol/messages.h"
#include "transport/completion.h"
#include "transport/context.h"

namespace imgcast::replicator {

class Upstream {
 public:
  // `own_region`: our staging mapping registered with `data` for remote writes (its descriptor
  // goes to each parent, which alone is granted to write; null for an empty image or the root).
  // All of them must outlive the Upstream, or freeze() must have been called.
  Upstream(transport::Context& data, const DataNodeOptions& options, ChunkLedger& ledger,
           transport::MemoryRegion* own_region);
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  // Connects to the parent of `tree` and sends Hello. Throws transport::Error naming the parent
  // when it cannot connect. REQUIRES: 0 <= tree < trees(), not the root.
  void connect(int tree, std::span<const std::byte> address, std::chrono::milliseconds timeout,
               const std::string& parent_name);
  // Drops the link to the parent of `tree` and connects to a new one, which resumes from the
  // first chunk of that tree not verified. Throws like connect().
  void reparent(int tree, std::span<const std::byte> address, std::chrono::milliseconds timeout,
                const std::string& parent_name);
  // Gives up on the parent of `tree`. REQUIRES: 0 <= tree < trees(), not the root.
  void abandon(int tree, std::string reason);
  // Gives up on every parent that still owes chunks and has sent none for `timeout`.
  void abandon_silent(std::chrono::steady_clock::time_point now, std::chrono::milliseconds timeout);

  // Each takes an event if it names one of our parents: false otherwise.
  bool on_control(transport::Endpoint* from, std::span<const std::byte> bytes);
  bool on_peer_failed(transport::Endpoint* peer, const transport::Status& status);
  // A write that did not come from a parent is ignored (only they hold our write key).
  void on_arrived(const transport::WriteArrived& arrived);

  // Every chunk is verified: takes every grant back and closes every parent link. After it, the
  // region may be deregistered and no parent event is taken. Idempotent.
  void freeze();

  // Set while the node has no working parent in `tree`: why it lost the last one.
  const std::optional<std::string>& orphaned(int tree) const noexcept;
  // Chunks that arrived corrupt and were asked for again.
  std::uint32_t refetched() const noexcept { return refetched_; }
  // The backends the parent links that proved themselves ran on (Result::link_kinds).
  std::uint8_t link_kinds() const noexcept { return link_kinds_; }

  // A parent that sends more corrupt chunks than this is given up on (the node re-parents).
  static constexpr std::uint32_t kMaxBadChunksPerParent = 3;

 private:
  struct Parent;

  void on_message(Parent& parent, const Message& message);
  // Refuses a corrupt chunk: asks the parent for it again, or gives up on a parent that sent
  // too many.
  void refetch(Parent& parent, std::uint32_t index);
  // Makes the node an orphan in the parent's tree, unless the tree owes nothing more (or the
  // node failed already).
  void lose(Parent& parent, std::string reason);
  Parent* find(transport::Endpoint* endpoint) noexcept;

  transport::Context& data_;
  const DataNodeOptions& options_;
  ChunkLedger& ledger_;
  transport::MemoryRegion* own_region_;  // null after freeze()
  std::vector<std::unique_ptr<Parent>> parents_;  // by tree
  std::uint8_t link_kinds_ = 0;  // 1 << transport::Kind of each parent link that got ready
  std::uint32_t refetched_ = 0;                   // corrupt chunks asked for again, in all
};

}  // namespace imgcast::replicator
