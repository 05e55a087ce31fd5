// Topologies for every job size 1..1000 and several roots: one parent each, every node reached
// exactly once from the root, the promised depth, and children in send order.
#include "replicator/topology.h"

#include <gtest/gtest.h>

#include <bit>
#include <queue>

namespace imgcast::replicator {
namespace {

void expect_spanning_tree(const Topology& t) {
  const int n = t.size();
  std::vector<int> times_child(n, 0);
  for (int rank = 0; rank < n; ++rank) {
    for (int child : t.children(rank)) {
      ASSERT_GE(child, 0);
      ASSERT_LT(child, n);
      ++times_child[child];
      EXPECT_EQ(t.parent(child), rank) << t.name() << " n=" << n << " child " << child;
    }
  }
  EXPECT_EQ(t.parent(t.root()), -1);
  for (int rank = 0; rank < n; ++rank) {
    EXPECT_EQ(times_child[rank], rank == t.root() ? 0 : 1) << t.name() << " n=" << n;
  }
  // Breadth-first from the root: every node once, and the deepest level is depth().
  std::vector<int> level(n, -1);
  std::queue<int> todo;
  level[t.root()] = 0;
  todo.push(t.root());
  int reached = 0, deepest = 0;
  while (!todo.empty()) {
    const int rank = todo.front();
    todo.pop();
    ++reached;
    deepest = std::max(deepest, level[rank]);
    for (int child : t.children(rank)) {
      ASSERT_EQ(level[child], -1) << "reached twice";
      level[child] = level[rank] + 1;
      todo.push(child);
    }
  }
  EXPECT_EQ(reached, n);
  EXPECT_EQ(deepest, t.depth()) << t.name() << " n=" << n;
}

int subtree_size(const Topology& t, int rank) {
  int size = 1;
  for (int child : t.children(rank))
    size += subtree_size(t, child);
  return size;
}

TEST(Topology, BinomialForEverySizeAndSeveralRoots) {
  for (int n = 1; n <= 1000; ++n) {
    for (int root : {0, n - 1, n / 2}) {
      const auto t = binomial_tree(n, root);
      expect_spanning_tree(*t);
      // The root sends each chunk ceil(log2 n) times, and no path is longer than that (equal
      // when n is a power of two).
      const int ceil_log2 = n == 1 ? 0 : std::bit_width(unsigned(n - 1));
      EXPECT_EQ(static_cast<int>(t->children(root).size()), ceil_log2) << "n=" << n;
      EXPECT_LE(t->depth(), ceil_log2) << "n=" << n;
      if (std::has_single_bit(unsigned(n))) {
        EXPECT_EQ(t->depth(), ceil_log2) << "n=" << n;
      }
    }
  }
}

TEST(Topology, BinomialServesTheLargestSubtreeFirst) {
  for (int n : {2, 3, 7, 16, 100, 1000}) {
    const auto t = binomial_tree(n, 0);
    for (int rank = 0; rank < n; ++rank) {
      const auto children = t->children(rank);
      for (std::size_t i = 1; i < children.size(); ++i) {
        EXPECT_GE(subtree_size(*t, children[i - 1]), subtree_size(*t, children[i]))
            << "n=" << n << " rank " << rank;
      }
    }
  }
}

TEST(Topology, ChainAndKaryForEverySize) {
  for (int n = 1; n <= 1000; ++n) {
    const auto chain = make_topology("chain", n, n % 3 == 0 ? 0 : n - 1);
    expect_spanning_tree(*chain);
    EXPECT_EQ(chain->depth(), n - 1);
    for (int k : {2, 4}) {
      const auto kary = kary_tree(n, 0, k);
      expect_spanning_tree(*kary);
      for (int rank = 0; rank < n; ++rank) {
        EXPECT_LE(kary->children(rank).size(), static_cast<std::size_t>(k));
      }
    }
  }
}

TEST(Topology, NamesAndBadArguments) {
  EXPECT_EQ(make_topology("binomial", 4, 0)->name(), "binomial");
  EXPECT_EQ(make_topology("chain", 4, 0)->name(), "chain");
  EXPECT_EQ(make_topology("kary:3", 4, 0)->name(), "kary:3");
  EXPECT_EQ(make_topology("kary:1", 4, 0)->name(), "chain");
  for (const char* bad : {"", "tree", "kary:", "kary:0", "kary:x", "kary:3x", "kary:2000"}) {
    EXPECT_THROW(make_topology(bad, 4, 0), std::invalid_argument) << bad;
  }
  EXPECT_THROW(binomial_tree(0, 0), std::invalid_argument);
  EXPECT_THROW(binomial_tree(4, 4), std::invalid_argument);
  EXPECT_THROW(binomial_tree(4, -1), std::invalid_argument);
  EXPECT_THROW(binomial_tree(4, 0)->children(4), std::invalid_argument);
}

}  // namespace
}  // namespace imgcast::replicator
