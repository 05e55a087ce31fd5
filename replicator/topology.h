// Topology: who sends to whom. Pure planning, no I/O: given the job size and the root, it names
// each rank's one parent and its children in the order the parent serves them.
// Ranks are 0..size-1; the root reads the image and has no parent.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace imgcast::replicator {

class Topology {
 public:
  virtual ~Topology() = default;
  virtual int size() const noexcept = 0;
  virtual int root() const noexcept = 0;
  // -1 for the root. REQUIRES: 0 <= rank < size().
  virtual int parent(int rank) const = 0;
  // In send order (a binomial tree serves the largest subtree first).
  virtual std::vector<int> children(int rank) const = 0;
  // Longest root-to-leaf path, in edges (0 for a single node).
  virtual int depth() const = 0;
  // "binomial", "chain", "kary:4"
  virtual std::string name() const = 0;
};

// Binomial tree: the root has ceil(log2 size) children, and no path is longer than that.
// Throws std::invalid_argument for size < 1 or a root out
// of range.
std::unique_ptr<Topology> binomial_tree(int size, int root);
// k-ary tree in rank order relative to the root; k = 1 is a pipelined chain.
std::unique_ptr<Topology> kary_tree(int size, int root, int k);
// Parses "binomial", "chain", "kary:K" (1 <= K <= 1024). Throws std::invalid_argument with a
// one-line reason naming the accepted forms.
std::unique_ptr<Topology> make_topology(const std::string& name, int size, int root);

}  // namespace imgcast::replicator
