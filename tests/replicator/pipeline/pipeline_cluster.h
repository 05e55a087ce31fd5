// PipelineCluster: the data side of a whole job in one process, for DataNode's tests. Each node
// has its own real TCP Context, data listener and DataChannel (so every connection goes through
// the channel's Admission, as in a run), and a real StagedImage in a temporary directory; the
// root reads a real ImageSource file of pseudo-random bytes. There is no control channel: the
// test plays the root session's part (start(), adopt(), reparent()) itself.
//
// Owned by one test; step() drives every live node's Context from the test's thread, as each
// session's event loop would.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "replicator/image/image_source.h"
#include "replicator/image/integrity.h"
#include "replicator/image/staged_image.h"
#include "replicator/pipeline/data_channel.h"
#include "replicator/pipeline/data_node.h"
#include "replicator/plan/topology.h"
#include "replicator/protocol/auth.h"
#include "tests/support/process.h"
#include "transport/context.h"

namespace imgcast::replicator::test {

class PipelineCluster {
 public:
  struct Options {
    std::string topology = "chain";  // make_topology()'s names
    int size = 2;
    std::uint64_t image_bytes = (3u << 20) + 1234;  // a short last chunk
    std::uint32_t chunk_bytes = 64u << 10;
    // Where rank r stages its copy: stage_in[r] when given and not empty, else the cluster's own
    // temporary directory.
    std::vector<std::filesystem::path> stage_in;
  };

  // Writes the source and makes every node's Context, listener and DataChannel (no DataNode
  // yet: a node connected to before start() is held by its channel's Admission).
  explicit PipelineCluster(const Options& options);
  ~PipelineCluster();
  PipelineCluster(const PipelineCluster&) = delete;
  PipelineCluster& operator=(const PipelineCluster&) = delete;

  // What the plan does to a node: stages its file and makes its DataNode; the root reads the
  // source, any other node connects to its parent in every tree (or to `parents[tree]`).
  void start(int rank);
  void start(int rank, const std::vector<int>& parents);
  void start_all();
  // The node's process dies: every connection it held closes.
  void kill(int rank);

  // One round of every live node's event loop: waits (at most a few ms) for any of them to have
  // work, then hands each node its Context's completions (through on_event first) and runs
  // after_batch().
  void step();
  // step()s until `done` holds; false when `limit` passed first.
  bool run_until(const std::function<bool()>& done,
                 std::chrono::milliseconds limit = std::chrono::seconds(5));
  // Every live, started node is complete.
  bool all_complete() const;

  DataNode& node(int rank);
  StagedImage& image(int rank);
  std::span<const std::byte> address(int rank) const;
  const Topology& topology() const { return *topology_; }
  const JobKey& key() const noexcept { return key_; }
  const JobId& job() const noexcept { return job_; }
  const std::vector<std::byte>& source() const noexcept { return source_bytes_; }
  ImageDigest source_digest() const;
  std::uint32_t chunk_count() const noexcept;
  std::uint64_t chunk_offset(std::uint32_t index) const noexcept {
    return std::uint64_t{index} * options_.chunk_bytes;
  }
  // The node's staged bytes equal the source's.
  bool holds_source(int rank);

  // Sees every completion of node `rank` before its DataChannel takes it (to count, or to
  // corrupt what just landed).
  std::function<void(int rank, transport::Completion& event)> on_event;

 private:
  struct Node;

  Options options_;
  JobKey key_;
  JobId job_;
  std::unique_ptr<Topology> topology_;
  imgcast::test::TempDir dir_;
  std::vector<std::byte> source_bytes_;
  std::optional<ImageSource> source_;  // before the nodes: the root's reader reads it
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace imgcast::replicator::test
