#include "replicator/plan/schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace imgcast::replicator {

namespace {
constexpr std::uint32_t kSmallestAutoChunk = 64u << 10;
// Measured on loopback (docs/perf.md): past ~512 KiB a chunk no longer sits in cache between
// landing and being hashed and forwarded, and a transfer gets slower (512 KiB: 0.55 s/GiB,
// 1 MiB: 0.67, 4 MiB: 0.77, 16 MiB: 0.89). The model knows only alpha and beta, so it is capped.
constexpr std::uint32_t kLargestAutoChunk = 512u << 10;
// How much better than the best single tree the model must find the two-tree for auto to pick it.
constexpr double kMultiTreeMargin = 0.03;
}  // namespace

double predict_seconds(const Topology& topology, std::uint64_t image_bytes,
                       std::uint32_t chunk_bytes, const LinkModel& link) {
  if (topology.size() <= 1 || image_bytes == 0) {
    return 0;
  }
  // fill: the first chunk of a tree reaches a node after the sum, along its path, of its
  // position in each parent's send order (a parent serves its children one after the other),
  // plus the tree's turn at the root. fan_out: the busiest uplink sends every chunk of the image
  // that many times on average (a node sends only its trees' chunks: 1/trees of them each),
  // which sets the pace once the pipe is full. A single tree: T = ((k - 1) * F + L) * t.
  const int trees = topology.trees();
  std::vector<double> sends(topology.size(), 0);  // per rank: sends per chunk of the image
  int fill = 0;
  for (int tree = 0; tree < trees; ++tree) {
    std::vector<std::pair<int, int>> todo{{topology.root(), tree}};  // rank, step it gets a chunk
    while (!todo.empty()) {
      const auto [rank, step] = todo.back();
      todo.pop_back();
      fill = std::max(fill, step);
      const std::vector<int> children = topology.children(rank, tree);
      sends[rank] += static_cast<double>(children.size()) / trees;
      for (std::size_t i = 0; i < children.size(); ++i) {
        todo.emplace_back(children[i], step + static_cast<int>(i) + 1);
      }
    }
  }
  const double fan_out = std::max(1.0, *std::max_element(sends.begin(), sends.end()));
  const double chunks = std::ceil(static_cast<double>(image_bytes) / chunk_bytes);
  // The last chunk may be short, but one full step per chunk is close enough for a choice.
  const double step =
      link.alpha_seconds + std::min<double>(chunk_bytes, image_bytes) / link.beta_bytes_per_second;
  return ((chunks - 1) * fan_out + fill) * step;
}

Schedule choose_schedule(int nodes, std::uint64_t image_bytes,
                         const std::optional<std::string>& topology,
                         const std::optional<std::uint32_t>& chunk_bytes, const LinkModel& link) {
  std::vector<std::string> topologies;
  if (topology) {
    topologies.push_back(*topology);
  } else {
    topologies = {"chain", "binomial", "kary:2", "kary:4", "twotree"};
  }
  std::vector<std::uint32_t> chunks;
  if (chunk_bytes) {
    chunks.push_back(*chunk_bytes);
  } else {
    for (std::uint32_t c = kSmallestAutoChunk; c <= kLargestAutoChunk; c *= 2) {
      chunks.push_back(c);
    }
  }
  Schedule best{"", 0, std::numeric_limits<double>::infinity(), ""};
  double best_score = best.predicted_seconds;  // what the choice compares (margins included)
  for (const auto& name : topologies) {
    const auto tree = make_topology(name, nodes, 0);
    for (std::uint32_t c : chunks) {
      const double t = predict_seconds(*tree, image_bytes, c, link);
      // Chosen on its own only where it clearly wins: a second parent per node and chunks that
      // land out of order cost a little the model does not see (docs/perf.md has the runs).
      const double score = !topology && tree->trees() > 1 ? t * (1 + kMultiTreeMargin) : t;
      // Ties go to the larger chunk (fewer messages) and the earlier topology in the list.
      if (score < best_score * (1 - 1e-9) ||
          (score <= best_score && tree->name() == best.topology && c > best.chunk_bytes)) {
        best = {tree->name(), c, t, ""};
        best_score = score;
      }
    }
  }
  best.reason = fmt::format(
      "{} with {} KiB chunks: predicted {:.3f}s for {} nodes, {:.1f} MB, link {:.2f} Gbit/s, "
      "{:.0f} us per chunk per hop{}",
      best.topology, best.chunk_bytes / 1024, best.predicted_seconds, nodes, image_bytes / 1e6,
      link.beta_bytes_per_second * 8 / 1e9, link.alpha_seconds * 1e6,
      topology && chunk_bytes ? " (as given)" : "");
  return best;
}

}  // namespace imgcast::replicator
