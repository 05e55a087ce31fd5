// DataChannel: a node's side of the data channel from the moment it listens. Connections to its
// data listener go through the channel's Admission (accept, authenticate) from the start, and
// the proven ones wait there until the plan has made the node's DataNode (start()); from then on
// every admitted child is handed to the node, and every other completion of the data Context is
// the node's. So a connection that comes before the plan (a fast child, a port scanner) is
// handled the same way on the root and on every agent.
//
// Owned and driven by the thread that polls the data Context (the session's EventLoop).
#pragma once

#include <chrono>
#include <memory>

#include "replicator/pipeline/data_node.h"
#include "replicator/protocol/admission.h"
#include "transport/context.h"

namespace imgcast::replicator {

class DataChannel {
 public:
  // Connections that may wait at once by default: a kary:1024 node's children all connecting
  // in one burst (plans leave the root together), and some strays.
  static constexpr std::size_t kMaxWaiting = 1024 + 64;

  // `handshake_deadline`: how long a connection may take to prove itself; `max_waiting`: how
  // many may wait at once (the root, which adopts orphans too, passes the job size + 64).
  DataChannel(transport::Context& data, const JobKey& key, const JobId& job,
              std::chrono::milliseconds handshake_deadline, std::size_t max_waiting = kMaxWaiting);

  transport::Context& context() noexcept { return data_; }

  // Makes the node (registering its staging mapping); admitted peers are served from the next
  // after_batch() on. Throws transport::Error when the mapping cannot be registered.
  // REQUIRES: not started yet.
  DataNode& start(const DataNodeOptions& options, StagedImage& image);
  DataNode* node() noexcept { return node_.get(); }
  const DataNode* node() const noexcept { return node_.get(); }

  // Takes one completion of the data Context.
  void handle(transport::Completion& event);
  // After each batch: expires slow handshakes, hands admitted peers to the node and pumps it.
  // Returns how long the loop may sleep before the next call (DataNode::pump()).
  std::chrono::milliseconds after_batch(std::chrono::steady_clock::time_point now);
  // The root's reading thread wakes the loop through this (-1 when there is none).
  int wake_fd() const noexcept { return node_ ? node_->wake_fd() : -1; }

 private:
  // Hands every admitted peer to the node, once there is one.
  void serve_admitted();

  transport::Context& data_;
  Admission admission_;
  std::unique_ptr<DataNode> node_;  // after the plan
};

}  // namespace imgcast::replicator
