#include "replicator/topology.h"

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

  int parent(int rank) const override {
    check_rank(rank);
    const int rel = relative(rank);
    return rel == 0 ? -1 : absolute(relative_parent(rel));
  }
  std::vector<int> children(int rank) const override {
    check_rank(rank);
    std::vector<int> out = relative_children(relative(rank));
    for (int& child : out) {
      child = absolute(child);
    }
    return out;
  }

 protected:
  virtual int relative_parent(int rel) const = 0;
  virtual std::vector<int> relative_children(int rel) const = 0;
  int size_;

 private:
  void check_rank(int rank) const {
    if (rank < 0 || rank >= size_) {
      throw std::invalid_argument(fmt::format("rank {} is outside 0..{}", rank, size_ - 1));
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
  int relative_parent(int rel) const override {
    return rel & ~(1 << (std::bit_width(unsigned(rel)) - 1));
  }
  std::vector<int> relative_children(int rel) const override {
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
  int relative_parent(int rel) const override { return (rel - 1) / k_; }
  std::vector<int> relative_children(int rel) const override {
    std::vector<int> out;
    for (long child = long(k_) * rel + 1; child <= long(k_) * rel + k_ && child < size_; ++child) {
      out.push_back(static_cast<int>(child));
    }
    return out;
  }

 private:
  int k_;
};

}  // namespace

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
      fmt::format("unknown topology '{}': use binomial, chain or kary:K", name));
}

}  // namespace imgcast::replicator
