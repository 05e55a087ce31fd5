// Topologies for every job size 1..1000 and several roots: one parent each, every node reached
// exactly once from the root, the promised depth, and children in send order.
#include "replicator/plan/topology.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <queue>

namespace imgcast::replicator {
namespace {

// Checks that t is a spanning tree rooted at t.root() whose deepest level is t.depth(), and
// returns every rank's subtree size (for the send-order checks).
std::vector<int> expect_spanning_tree(const Topology& t) {
  const int n = t.size();
  const std::string where =
      t.name() + " n=" + std::to_string(n) + " root=" + std::to_string(t.root());
  std::vector<int> times_child(n, 0);
  for (int rank = 0; rank < n; ++rank) {
    for (int child : t.children(rank)) {
      EXPECT_TRUE(child >= 0 && child < n) << where << " child " << child;
      if (child < 0 || child >= n)
        return {};
      ++times_child[child];
      EXPECT_EQ(t.parent(child), rank) << where << " child " << child;
    }
  }
  EXPECT_EQ(t.parent(t.root()), -1) << where;
  for (int rank = 0; rank < n; ++rank) {
    EXPECT_EQ(times_child[rank], rank == t.root() ? 0 : 1) << where << " rank " << rank;
  }
  // Breadth-first from the root: every node once, and the deepest level is depth().
  std::vector<int> level(n, -1);
  std::vector<int> order;
  std::queue<int> todo;
  level[t.root()] = 0;
  todo.push(t.root());
  int deepest = 0;
  while (!todo.empty()) {
    const int rank = todo.front();
    todo.pop();
    order.push_back(rank);
    deepest = std::max(deepest, level[rank]);
    for (int child : t.children(rank)) {
      EXPECT_EQ(level[child], -1) << where << " reached " << child << " twice";
      if (level[child] != -1)
        return {};
      level[child] = level[rank] + 1;
      todo.push(child);
    }
  }
  EXPECT_EQ(static_cast<int>(order.size()), n) << where;
  EXPECT_EQ(deepest, t.depth()) << where;
  // Reverse breadth-first order visits children before parents.
  std::vector<int> subtree(n, 1);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    if (*it != t.root())
      subtree[t.parent(*it)] += subtree[*it];
  }
  return subtree;
}

int ceil_log2(int n) { return n == 1 ? 0 : std::bit_width(unsigned(n - 1)); }

TEST(Topology, BinomialForEverySizeAndSeveralRoots) {
  for (int n = 1; n <= 1000; ++n) {
    for (int root : {0, n - 1, n / 2}) {
      const auto t = binomial_tree(n, root);
      const std::vector<int> subtree = expect_spanning_tree(*t);
      ASSERT_EQ(static_cast<int>(subtree.size()), n);
      // The root sends each chunk ceil(log2 n) times, and no path is longer than that. The
      // longest path is the most bits set in a relative rank below n, so it equals ceil(log2 n)
      // only when n is a power of two or one less (n = 5: ranks 3 and 5-1 have two bits, depth 2).
      EXPECT_EQ(static_cast<int>(t->children(root).size()), ceil_log2(n)) << "n=" << n;
      int most_bits = 0;
      for (unsigned rel = 0; rel < unsigned(n); ++rel)
        most_bits = std::max(most_bits, std::popcount(rel));
      EXPECT_EQ(t->depth(), most_bits) << "n=" << n;
      EXPECT_LE(t->depth(), ceil_log2(n)) << "n=" << n;
      if (std::has_single_bit(unsigned(n))) {
        EXPECT_EQ(t->depth(), ceil_log2(n)) << "n=" << n;
      }
      // Send order: the largest subtree first, at every node.
      for (int rank = 0; rank < n; ++rank) {
        const auto children = t->children(rank);
        for (std::size_t i = 1; i < children.size(); ++i) {
          EXPECT_GE(subtree[children[i - 1]], subtree[children[i]])
              << "n=" << n << " root=" << root << " rank " << rank;
        }
      }
    }
  }
}

TEST(Topology, ChainAndKaryForEverySizeAndSeveralRoots) {
  for (int n = 1; n <= 1000; ++n) {
    for (int root : {0, n - 1, n / 2}) {
      const auto chain = make_topology("chain", n, root);
      expect_spanning_tree(*chain);
      EXPECT_EQ(chain->depth(), n - 1);
      for (int k : {2, 3, 4}) {
        const auto kary = kary_tree(n, root, k);
        expect_spanning_tree(*kary);
        // A full k-ary tree of depth d holds (k^(d+1) - 1) / (k - 1) nodes: depth is the
        // smallest d with that >= n.
        int depth = 0;
        for (long capacity = 1, level = 1; capacity < n; ++depth) {
          level *= k;
          capacity += level;
        }
        EXPECT_EQ(kary->depth(), depth) << "k=" << k << " n=" << n;
        for (int rank = 0; rank < n; ++rank) {
          EXPECT_LE(kary->children(rank).size(), static_cast<std::size_t>(k));
        }
      }
    }
  }
}

TEST(Topology, WideKaryIsAStar) {
  const auto star = make_topology("kary:1024", 500, 7);
  expect_spanning_tree(*star);
  EXPECT_EQ(star->depth(), 1);
  EXPECT_EQ(star->children(7).size(), 499u);
  EXPECT_EQ(star->children(8).size(), 0u);
}

TEST(Topology, SingleNode) {
  for (const char* name : {"binomial", "chain", "kary:4"}) {
    const auto t = make_topology(name, 1, 0);
    EXPECT_EQ(t->parent(0), -1);
    EXPECT_TRUE(t->children(0).empty());
    EXPECT_EQ(t->depth(), 0);
  }
}

// Rank arithmetic must not overflow int for the largest jobs a rank can number.
TEST(Topology, NoOverflowNearIntMax) {
  const int n = INT_MAX;
  for (int root : {0, n - 1, n / 2}) {
    for (const char* name : {"binomial", "kary:2", "kary:1024"}) {
      const auto t = make_topology(name, n, root);
      EXPECT_EQ(t->parent(root), -1);
      for (int rank : {0, 1, n / 2 - 1, n / 2 + 1, n - 2, n - 1}) {
        const int parent = t->parent(rank);
        if (rank == root) {
          continue;
        }
        ASSERT_TRUE(parent >= 0 && parent < n) << name << " rank " << rank;
        const auto siblings = t->children(parent);
        EXPECT_EQ(std::count(siblings.begin(), siblings.end(), rank), 1) << name << " " << rank;
        for (int child : t->children(rank)) {
          ASSERT_TRUE(child >= 0 && child < n) << name << " rank " << rank;
          EXPECT_EQ(t->parent(child), rank) << name;
        }
      }
    }
    EXPECT_EQ(binomial_tree(n, root)->depth(), 30);
  }
}

TEST(Topology, NamesAndBadArguments) {
  EXPECT_EQ(make_topology("binomial", 4, 0)->name(), "binomial");
  EXPECT_EQ(make_topology("chain", 4, 0)->name(), "chain");
  EXPECT_EQ(make_topology("kary:3", 4, 0)->name(), "kary:3");
  EXPECT_EQ(make_topology("kary:1", 4, 0)->name(), "chain");
  EXPECT_EQ(make_topology("twotree", 4, 0)->name(), "twotree");
  EXPECT_THROW(two_tree(4, 0)->parent(1, 2), std::invalid_argument);
  EXPECT_THROW(binomial_tree(4, 0)->children(1, 1), std::invalid_argument);
  EXPECT_EQ(kary_tree(4, 0, 1)->name(), "chain");
  for (const char* bad : {"", "tree", "Binomial", "kary", "kary:", "kary:0", "kary:-2", "kary:x",
                          "kary:3x", "kary: 3", "kary:2000", "kary:99999999999"}) {
    try {
      (void)make_topology(bad, 4, 0);
      ADD_FAILURE() << "'" << bad << "' accepted";
    } catch (const std::invalid_argument& error) {
      const std::string what = error.what();
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
  try {
    (void)make_topology("star", 4, 0);
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("binomial, chain, kary:K or twotree"),
              std::string::npos);
  }
  EXPECT_THROW(binomial_tree(0, 0), std::invalid_argument);
  EXPECT_THROW(binomial_tree(-3, 0), std::invalid_argument);
  EXPECT_THROW(binomial_tree(4, 4), std::invalid_argument);
  EXPECT_THROW(binomial_tree(4, -1), std::invalid_argument);
  EXPECT_THROW(kary_tree(4, 0, 0), std::invalid_argument);
  EXPECT_THROW(kary_tree(4, 0, 1025), std::invalid_argument);
  EXPECT_THROW(kary_tree(0, 0, 2), std::invalid_argument);
  EXPECT_THROW(kary_tree(4, 5, 2), std::invalid_argument);
  EXPECT_THROW(binomial_tree(4, 0)->children(4), std::invalid_argument);
  EXPECT_THROW(binomial_tree(4, 0)->parent(-1), std::invalid_argument);
  EXPECT_THROW(kary_tree(4, 0, 2)->parent(4), std::invalid_argument);
}

// Two-tree, every size 1..1000 and several roots: each tree spans every node from the root, the
// root has one child per tree, every node has at most two children in a tree and is inner in at
// most one tree (so it sends each of its chunks at most twice: the image once in all), each
// chunk reaches every node exactly once from one parent (its tree's), and no path is longer
// than about log2 N.
TEST(Topology, TwoTreeForEverySizeAndSeveralRoots) {
  for (int n = 1; n <= 1000; ++n) {
    for (int root : {0, n / 2, n - 1}) {
      const auto t = two_tree(n, root);
      const std::string where = "n=" + std::to_string(n) + " root=" + std::to_string(root);
      ASSERT_EQ(t->trees(), 2) << where;
      int deepest = 0;
      std::vector<int> inner_in(n, 0);
      for (int tree = 0; tree < 2; ++tree) {
        std::vector<int> level(n, -1);
        std::queue<int> todo;
        level[root] = 0;
        todo.push(root);
        int reached = 0;
        while (!todo.empty()) {
          const int rank = todo.front();
          todo.pop();
          ++reached;
          deepest = std::max(deepest, level[rank]);
          const std::vector<int> children = t->children(rank, tree);
          EXPECT_LE(children.size(), rank == root ? 1u : 2u) << where << " rank " << rank;
          if (rank != root && !children.empty())
            ++inner_in[rank];
          for (int child : children) {
            ASSERT_TRUE(child >= 0 && child < n) << where;
            ASSERT_EQ(level[child], -1)
                << where << " tree " << tree << " reached " << child << " twice";
            EXPECT_EQ(t->parent(child, tree), rank) << where;
            level[child] = level[rank] + 1;
            todo.push(child);
          }
        }
        EXPECT_EQ(reached, n) << where << " tree " << tree;
        EXPECT_EQ(t->parent(root, tree), -1) << where;
      }
      for (int rank = 0; rank < n; ++rank) {
        EXPECT_LE(inner_in[rank], 1) << where << " rank " << rank << " is inner in both trees";
      }
      EXPECT_EQ(deepest, t->depth()) << where;
      EXPECT_LE(t->depth(), ceil_log2(n) + 1) << where;
    }
  }
}

}  // namespace
}  // namespace imgcast::replicator
