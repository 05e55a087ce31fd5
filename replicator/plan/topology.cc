#include "replicator/plan/topology.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <stdexcept>

namespace imgcast::replicator {

namespace {

void check_size_and_root(int size, int root) {
  if (size < 1) {
    throw std::invalid_argument(fmt::format("a job needs at least 1 node, not {}", size));
  }
  if (root < 0 || root >= size) {
    throw std::invalid_argument(fmt::format("root {} is outside ranks 0..{}", root, size - 1));
  }
}

// Shared by the trees below: they plan in ranks relative to the root (the root is 0).
class RelativeTopology : public Topology {
 public:
  RelativeTopology(int size, int root) : size_(size), root_(root) {}
  int size() const noexcept override { return size_; }
  int root() const noexcept override { return root_; }

  int parent(int rank, int tree) const override {
    check(rank, tree);
    const int rel = relative(rank);
    return rel == 0 ? -1 : absolute(relative_parent(rel, tree));
  }
  std::vector<int> children(int rank, int tree) const override {
    check(rank, tree);
    std::vector<int> out = relative_children(relative(rank), tree);
    for (int& child : out) {
      child = absolute(child);
    }
    return out;
  }
  using Topology::children;
  using Topology::parent;

 protected:
  virtual int relative_parent(int rel, int tree) const = 0;
  virtual std::vector<int> relative_children(int rel, int tree) const = 0;
  int size_;

 private:
  void check(int rank, int tree) const {
    if (rank < 0 || rank >= size_) {
      throw std::invalid_argument(fmt::format("rank {} is outside 0..{}", rank, size_ - 1));
    }
    if (tree < 0 || tree >= trees()) {
      throw std::invalid_argument(fmt::format("tree {} is outside 0..{}", tree, trees() - 1));
    }
  }
  // Written without rank + size, which would overflow int for jobs past 2^30 ranks.
  int relative(int rank) const { return rank >= root_ ? rank - root_ : rank + (size_ - root_); }
  int absolute(int rel) const { return rel < size_ - root_ ? rel + root_ : rel - (size_ - root_); }
  int root_;
};

// Binomial tree: relative rank r's parent is r with its highest set bit cleared; its children
// are r + 2^k for every 2^k above r's highest bit. The child r + 2^k roots the nodes that add
// bits above k, so the smallest k has the largest subtree: serving children in increasing k
// sends first down the deepest branch. The root has ceil(log2 n) children (it sends every chunk
// that many times); the longest path is the largest popcount of a relative rank below n.
class BinomialTree final : public RelativeTopology {
 public:
  using RelativeTopology::RelativeTopology;
  int depth() const override {
    if (size_ <= 1)
      return 0;
    const unsigned last = unsigned(size_ - 1);
    return std::max<int>(std::popcount(last), static_cast<int>(std::bit_width(last)) - 1);
  }
  std::string name() const override { return "binomial"; }

 protected:
  int relative_parent(int rel, int) const override {
    return rel & ~(1 << (std::bit_width(unsigned(rel)) - 1));
  }
  std::vector<int> relative_children(int rel, int) const override {
    std::vector<int> out;
    for (int bit = rel == 0 ? 0 : std::bit_width(unsigned(rel)); bit < 31; ++bit) {
      const long child = rel + (1L << bit);
      if (child >= size_)
        break;
      out.push_back(static_cast<int>(child));
    }
    return out;
  }
};

// k-ary tree in relative rank order: r's children are k*r+1 .. k*r+k. k = 1 is a chain.
class KaryTree final : public RelativeTopology {
 public:
  KaryTree(int size, int root, int k) : RelativeTopology(size, root), k_(k) {}
  int depth() const override {
    int depth = 0;
    for (int rel = size_ - 1; rel > 0; rel = (rel - 1) / k_) {
      ++depth;
    }
    return depth;
  }
  std::string name() const override { return k_ == 1 ? "chain" : fmt::format("kary:{}", k_); }

 protected:
  int relative_parent(int rel, int) const override { return (rel - 1) / k_; }
  std::vector<int> relative_children(int rel, int) const override {
    std::vector<int> out;
    for (long child = long(k_) * rel + 1; child <= long(k_) * rel + k_ && child < size_; ++child) {
      out.push_back(static_cast<int>(child));
    }
    return out;
  }

 private:
  int k_;
};

// Two-tree: the n = size - 1 non-root nodes (relative ranks 1..n) sit at in-order positions
// 1..n of a binary tree in which each interval's root is its position with the most trailing
// zero bits (unique in any interval). Odd positions are then always leaves. Tree 0 puts node r
// at position r, tree 1 at position r + 1 (node n wraps to position 1): of r and r + 1 one is
// odd, so every node is a leaf in at least one tree, and inner (two children at most) in at
// most one. The root sends tree t's chunks to tree t's top node.
class TwoTree final : public RelativeTopology {
 public:
  TwoTree(int size, int root) : RelativeTopology(size, root) {
    const int n = size - 1;
    for (int tree = 0; tree < 2; ++tree) {
      parent_[tree].assign(size, -1);
      children_[tree].assign(size, {});
      if (n == 0)
        continue;
      const int top = build(tree, 1, n);
      children_[tree][0].push_back(top);
      parent_[tree][top] = 0;
    }
    for (int tree = 0; tree < 2; ++tree) {
      for (int rel = 1; rel < size; ++rel) {
        int d = 0;
        for (int at = rel; at != 0; at = parent_[tree][at])
          ++d;
        depth_ = std::max(depth_, d);
      }
    }
  }
  int trees() const noexcept override { return 2; }
  int depth() const override { return depth_; }
  std::string name() const override { return "twotree"; }

 protected:
  int relative_parent(int rel, int tree) const override { return parent_[tree][rel]; }
  std::vector<int> relative_children(int rel, int tree) const override {
    return children_[tree][rel];
  }

 private:
  // The node (relative rank) at in-order position `position` of `tree`.
  int node_at(int tree, int position) const {
    return tree == 0 ? position : (position == 1 ? size_ - 1 : position - 1);
  }
  // Builds the subtree over positions [lo, hi]; returns its top node.
  int build(int tree, int lo, int hi) {
    int top = hi;
    for (int bit = 30; bit >= 0; --bit) {
      const int candidate = (hi >> bit) << bit;
      if (candidate >= lo) {
        top = candidate;
        break;
      }
    }
    const int node = node_at(tree, top);
    if (top > lo) {
      const int left = build(tree, lo, top - 1);
      children_[tree][node].push_back(left);
      parent_[tree][left] = node;
    }
    if (top < hi) {
      const int right = build(tree, top + 1, hi);
      children_[tree][node].push_back(right);
      parent_[tree][right] = node;
    }
    return node;
  }

  std::vector<int> parent_[2];
  std::vector<std::vector<int>> children_[2];
  int depth_ = 0;
};

}  // namespace

std::unique_ptr<Topology> two_tree(int size, int root) {
  check_size_and_root(size, root);
  return std::make_unique<TwoTree>(size, root);
}

std::unique_ptr<Topology> binomial_tree(int size, int root) {
  check_size_and_root(size, root);
  return std::make_unique<BinomialTree>(size, root);
}

std::unique_ptr<Topology> kary_tree(int size, int root, int k) {
  check_size_and_root(size, root);
  if (k < 1 || k > 1024) {
    throw std::invalid_argument(fmt::format("kary:{} is out of range: K must be 1..1024", k));
  }
  return std::make_unique<KaryTree>(size, root, k);
}

std::unique_ptr<Topology> make_topology(const std::string& name, int size, int root) {
  if (name == "binomial") {
    return binomial_tree(size, root);
  }
  if (name == "chain") {
    return kary_tree(size, root, 1);
  }
  if (name == "twotree") {
    return two_tree(size, root);
  }
  if (name.starts_with("kary:")) {
    int k = 0;
    const char* first = name.data() + 5;
    const char* last = name.data() + name.size();
    const auto [end, error] = std::from_chars(first, last, k);
    if (error == std::errc() && end == last && first != last) {
      return kary_tree(size, root, k);
    }
  }
  throw std::invalid_argument(
      fmt::format("unknown topology '{}': use binomial, chain, kary:K or twotree", name));
}

}  // namespace imgcast::replicator
