// Schedule: which topology and chunk size to use, chosen with an alpha-beta model of a pipelined
// tree broadcast (van de Geijn's pipelined broadcast analysis; see docs/architecture.md).
//
// A chunk of C bytes takes t = alpha + C / beta to cross one link, where alpha is the per-chunk
// cost of one hop (latency plus software) and beta a link's bandwidth. A node with f children
// sends every chunk f times on its one uplink, so with k = ceil(S / C) chunks and a largest
// fan-out F, once the pipe is full a chunk leaves the busiest node every F * t. Filling the pipe
// takes L steps, L being the largest sum, along a root-to-leaf path, of each child's position in
// its parent's send order. So
//     T = ((k - 1) * F + L) * t
// (the chain: F = 1, L = N - 1, T = (k + N - 2) * t, close to S / beta when k >> N; the binomial
// tree: F = L = ceil(log2 N), T ~ log2 N * S / beta). Small chunks shorten the pipeline's fill,
// large ones amortise alpha; the chunk size is picked from powers of two by the same formula.
// The two-tree's F is averaged over its trees (a node sends only its trees' chunks) and its L is
// the largest over both; it is chosen on its own only when it beats the best single tree by more
// than 3 % (kMultiTreeMargin, schedule.cc): a second parent per node costs a little the model
// does not see.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "replicator/plan/topology.h"

namespace imgcast::replicator {

struct LinkModel {
  double alpha_seconds = 50e-6;           // per chunk per hop
  double beta_bytes_per_second = 1.25e9;  // per link, each direction (10 Gbit/s)
};

struct Schedule {
  std::string topology;       // "chain", "binomial", "kary:K", "twotree"
  std::uint32_t chunk_bytes;  // within ChunkPlan's bounds
  double predicted_seconds;   // by the model
  std::string reason;         // one line for the log and the report
};

// The model's time for `topology` moving `image_bytes` in chunks of `chunk_bytes`.
double predict_seconds(const Topology& topology, std::uint64_t image_bytes,
                       std::uint32_t chunk_bytes, const LinkModel& link);

// Fills in whatever the user left to "auto" (nullopt): the topology from chain, binomial,
// kary:2/4 and twotree, the chunk size from 64 KiB..512 KiB, both minimising predict_seconds. A
// given value is kept as it is (and still gets a prediction). Throws std::invalid_argument for a
// bad topology name.
Schedule choose_schedule(int nodes, std::uint64_t image_bytes,
                         const std::optional<std::string>& topology,
                         const std::optional<std::uint32_t>& chunk_bytes, const LinkModel& link);

}  // namespace imgcast::replicator
