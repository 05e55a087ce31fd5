// Topology: who sends to whom. Pure planning, no I/O: given the job size and the root, it names
// each rank's parent and its children in the order the parent serves them, in each of its
// trees. Most topologies are one tree; the two-tree broadcast is two, and chunk k travels tree
// k % trees(). Ranks are 0..size-1; the root reads the image and has no parent.
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
  // How many trees; chunk k travels tree k % trees().
  virtual int trees() const noexcept { return 1; }
  // -1 for the root. REQUIRES: 0 <= rank < size(), 0 <= tree < trees().
  virtual int parent(int rank, int tree) const = 0;
  // In send order (a binomial tree serves the largest subtree first).
  virtual std::vector<int> children(int rank, int tree) const = 0;
  // Longest root-to-leaf path over every tree, in edges (0 for a single node).
  virtual int depth() const = 0;
  // "binomial", "chain", "kary:4", "twotree"
  virtual std::string name() const = 0;

  // Tree 0: the whole topology for the one-tree kinds.
  int parent(int rank) const { return parent(rank, 0); }
  std::vector<int> children(int rank) const { return children(rank, 0); }
};

// Binomial tree: the root has ceil(log2 size) children, and no path is longer than that.
// Throws std::invalid_argument for size < 1 or a root out
// of range.
std::unique_ptr<Topology> binomial_tree(int size, int root);
// k-ary tree in rank order relative to the root; k = 1 is a pipelined chain.
std::unique_ptr<Topology> kary_tree(int size, int root, int k);
// Two-tree broadcast (Sanders, Speck and Traeff, "Two-tree algorithms for full bandwidth
// broadcast, reduction and scan", Parallel Computing 35(12), 2009): two binary trees over the
// non-root nodes, each carrying half the chunks, such that every node is an inner node (at most
// two children) of at most one of them. So no node sends more than the image once, whatever N,
// and no path is longer than about log2 N: bandwidth-optimal where a chain's N-long fill hurts.
std::unique_ptr<Topology> two_tree(int size, int root);
// Parses "binomial", "chain", "kary:K" (1 <= K <= 1024), "twotree". Throws
// std::invalid_argument with a one-line reason naming the accepted forms.
std::unique_ptr<Topology> make_topology(const std::string& name, int size, int root);

}  // namespace imgcast::replicator
