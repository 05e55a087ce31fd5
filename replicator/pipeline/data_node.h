// DataNode: one node's part of the chunk pipeline. The same code runs on the root, on relays and
// on leaves; only where a chunk comes from differs (the root reads it from the ImageSource, the
// others have it written into their staging file by their parent).
//
// A chunk's life on a node: it lands (or is read) straight into the staging file's mapping, its
// xxh3-64 is checked against the digest that came with it, it joins the verified prefix (fed to
// the whole-image hasher in order), and at once each child gets a one-sided write of the same
// range, at most `window` writes in flight per child. Nothing is copied or allocated per chunk.
//
// A node has one parent per tree of the topology (two for the two-tree broadcast); chunk k comes
// from the parent of tree k % trees(), and a child is served the chunks of its own tree, each as
// soon as it has landed and been checked.
//
// A node whose parent dies, stalls or keeps sending corrupt chunks becomes an orphan in that
// tree (orphaned(tree)): it keeps serving its own children from what it has, and its owner asks
// the root for a new parent, then calls reparent(). The new parent resumes from the first chunk
// of that tree the node lacks. A chunk that fails its check is fetched again from the parent
// (Refetch), a few times.
//
// Owned and driven by one thread: the owner (DataChannel) hands it every peer its Admission let
// in (serve()) and every other completion of the data Context (handle()), calls pump() after
// each batch, and the session reads the state accessors.
//
// A façade over four parts, each with one job; data flows one way through them:
//   ChunkLedger  what the node holds: per-chunk digests, landed and verified, the image hash
//   Upstream     the parents: handshakes, checks each arriving chunk, lands it in the ledger
//   Downstream   the children: serves them, forwards what the ledger holds within each window
//   RootFeed     the root only: lands what the source reader read, paces it by the children
// DataNode owns them, registers the staging mapping they share, and dispatches events.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "replicator/image/chunk_source.h"
#include "replicator/image/integrity.h"
#include "replicator/image/page_runner.h"
#include "replicator/image/source_reader.h"
#include "replicator/image/staged_image.h"
#include "replicator/pipeline/chunk_ledger.h"
#include "replicator/pipeline/data_node_options.h"
#include "replicator/pipeline/downstream.h"
#include "replicator/pipeline/root_feed.h"
#include "replicator/pipeline/upstream.h"
#include "replicator/plan/chunk_plan.h"
#include "replicator/plan/topology.h"
#include "replicator/protocol/admission.h"
#include "replicator/protocol/auth.h"
#include "transport/context.h"

namespace imgcast::replicator {

class DataNode {
 public:
  // Registers the staging mapping with `data`. Throws transport::Error if it cannot.
  DataNode(transport::Context& data, const DataNodeOptions& options, StagedImage& image);
  ~DataNode();
  DataNode(const DataNode&) = delete;
  DataNode& operator=(const DataNode&) = delete;

  // How many parents an agent has: one per tree of the topology (chunk k comes from tree
  // k % trees()'s parent).
  int trees() const noexcept { return ledger_.trees(); }

  // Agents: connect to the parent of `tree` and start the handshake. Throws transport::Error
  // naming the parent when it cannot connect.
  void connect_to_parent(int tree, std::span<const std::byte> address,
                         std::chrono::milliseconds timeout, const std::string& parent_name);
  // The root: the chunks come from here. REQUIRES: rank is the topology's root.
  void use_source(const ChunkSource& source);
  // The root: read the rest of the source at once, whatever the children do (none makes
  // progress: the root's own copy must still finish).
  void stop_pacing() noexcept;
  // Serve the node at `data_rank` in `tree` too (it lost its parent there; the root chose us).
  void adopt(int data_rank, int tree) { downstream_.adopt(data_rank, tree); }
  // Give up on the parent of `tree` (it cannot be reached): the node is an orphan there.
  void abandon_parent(int tree, std::string reason) { upstream_.abandon(tree, std::move(reason)); }
  // Gives up on every parent that still owes chunks and has sent none for `timeout` (stopped,
  // or its link is cut: only a timeout tells).
  void abandon_silent_parents(std::chrono::steady_clock::time_point now,
                              std::chrono::milliseconds timeout) {
    upstream_.abandon_silent(now, timeout);
  }
  // Connect to a new parent for `tree` and resume from the first of its chunks not verified.
  // Throws transport::Error naming the parent when it cannot connect (the node stays an orphan
  // there). REQUIRES: orphaned(tree).
  void reparent(int tree, std::span<const std::byte> address, std::chrono::milliseconds timeout,
                const std::string& parent_name) {
    upstream_.reparent(tree, address, timeout, parent_name);
  }

  // Serves a peer the data channel's Admission let in, if its introduction (Region) asks for a
  // tree in which it is our child; otherwise it is told why and refused.
  void serve(AdmittedPeer peer) { downstream_.serve(std::move(peer)); }
  // Takes one completion of the data Context that names a parent or a child of this node
  // (arrivals, write completions, their messages and failures); false for any other.
  bool handle(transport::Completion& completion);
  // Takes what the root's reader has read and forwards whatever the windows allow. Returns how
  // long the owner may sleep in poll before calling again (on the data Context's fd and
  // wake_fd()): zero when there is more to do right now.
  std::chrono::milliseconds pump();
  // The root: readable when the source reader has read the chunk the root waits for. -1
  // elsewhere.
  int wake_fd() const noexcept { return feed_ ? feed_->wake_fd() : -1; }

  // Stops the page runner (idempotent). Call before the copy is placed: on tmpfs its fallocate
  // bumps the file's mtime, which the cache record attached at placement pins (a copy touched
  // after it no longer counts as cached). freeze() calls it; the root calls it itself.
  void stop_pages() noexcept { pages_.reset(); }

  // Every chunk is present and verified, in order.
  bool complete() const noexcept { return ledger_.complete(); }
  // The whole-image xxh3-128 of the chunks as they were checked on arrival. REQUIRES: complete().
  ImageDigest digest() const noexcept { return ledger_.image_digest(); }
  // Agents, once complete(): stops every write into the staging mapping (the parent links close
  // and the write registration goes, so its key is worthless in every backend), then hashes the
  // whole mapping again, as it lies, and returns that xxh3-128. What the caller must compare
  // with the source's before placing the copy: bytes a stranger wrote with a sniffed key after a
  // chunk was checked (possible on UCX/verbs, where an rkey cannot be bound to one connection)
  // are caught here. The first call does the work; later ones return the same digest. Call it
  // between two batches of completions. REQUIRES: complete().
  ImageDigest freeze();
  // Set once; the node's own copy cannot complete (a parent that fails authentication, a read
  // error on the root).
  const std::optional<std::string>& failure() const noexcept { return ledger_.failure(); }
  // Set while the node has no working parent in `tree`: why it lost the last one.
  const std::optional<std::string>& orphaned(int tree) const noexcept {
    return upstream_.orphaned(tree);
  }
  std::uint64_t bytes_verified() const noexcept { return ledger_.bytes_verified(); }
  std::uint32_t chunks_verified() const noexcept { return ledger_.verified(); }
  // Chunks that arrived corrupt and were asked for again.
  std::uint32_t refetched() const noexcept { return upstream_.refetched(); }
  std::uint8_t link_kinds() const noexcept { return upstream_.link_kinds(); }

  // A parent that sends more corrupt chunks than this is given up on (the node re-parents).
  static constexpr std::uint32_t kMaxBadChunksPerParent = Upstream::kMaxBadChunksPerParent;

 private:
  // Tells the page runner where the data is; fails the node if it ran out of space.
  void follow_pages();

  // In creation order; the parts hold references to what is declared before them.
  DataNodeOptions options_;
  ChunkLedger ledger_;
  // Keeps the staging file's pages allocated and mapped just ahead of the verified prefix, and
  // its write-back just behind it (null for an empty image). Before the regions: it may touch
  // pages while they are registered, never after the mapping goes.
  std::unique_ptr<PageRunner> pages_;
  // The staging mapping, registered twice: as the source of writes to the children (for as long
  // as the node serves), and, on an agent, as the target of its parents' writes (until freeze()).
  std::unique_ptr<transport::MemoryRegion> source_region_;
  std::unique_ptr<transport::MemoryRegion> write_region_;
  Downstream downstream_;
  // After the children, so the parents' links close first, as they always did.
  Upstream upstream_;
  bool pace_reads_ = true;  // cleared by stop_pacing(), perhaps before use_source()
  std::optional<ImageDigest> frozen_digest_;  // freeze()'s digest
  // The root only, after use_source(). Last: its reading thread stops before the ledger and the
  // mapping it writes go away.
  std::unique_ptr<RootFeed> feed_;
};

}  // namespace imgcast::replicator
