// Report: what happened on every node, as the root saw it. The CLI prints it; tests read it.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "replicator/errors.h"

namespace imgcast::replicator {

struct NodeResult {
  int rank = 0;
  std::string host;
  std::string destination;
  bool verified = false;
  double seconds = 0;   // from the start of the data flow to the node's verified, placed copy
  std::string failure;  // empty on success
  bool cached = false;  // its copy was this image already: skipped (verified, seconds 0)
  int reparents = 0;    // times it lost its parent and was re-attached to a live ancestor
  std::uint32_t refetched = 0;  // chunks that arrived corrupt and were fetched again
  // What its parent links ran on: "tcp", "ucx", "verbs", or "ucx+tcp" when they differed (a
  // link of --transport auto fell back); empty when none (the root, a cached copy, a failure).
  std::string transport;
};

// Result::link_kinds as NodeResult::transport: the names of the bits set, RDMA first.
std::string link_kinds_name(std::uint8_t link_kinds);

// What a replicated directory tree holds (from its manifest).
struct TreeSummary {
  std::uint64_t files = 0;
  std::uint64_t directories = 0;
  std::uint64_t symlinks = 0;
  std::uint64_t hardlinks = 0;
  std::uint64_t bytes = 0;  // the files' contents (image_bytes adds the manifest)
};

struct Report {
  std::uint64_t image_bytes = 0;
  std::optional<TreeSummary> tree;  // set when a directory tree was replicated
  std::uint32_t chunk_bytes = 0;
  std::string topology;
  std::string transport;
  std::string digest;        // whole-image xxh3-128, hex
  std::string plan;          // why this topology and chunk size (the schedule model)
  double setup_seconds = 0;  // launching agents, handshakes, staging files
  double transfer_seconds = 0;
  std::vector<NodeResult> nodes;

  // How many nodes may fail while the run still counts as a success (--allow-fail); the root
  // itself never may.
  int allowed_failures = 0;

  int verified_count() const;
  int cached_count() const;
  // kSuccess, kPartial (some verified), or kTransferFailed (none).
  ExitCode exit_code() const;
  // One line per node and a total line.
  void print(std::ostream& out) const;
  // The same as one JSON document (schema in docs/usage.md), for scripts.
  void print_json(std::ostream& out) const;
  // Verified nodes slower than 1.5 x the median verified node's time.
  std::vector<int> stragglers() const;
};

}  // namespace imgcast::replicator
