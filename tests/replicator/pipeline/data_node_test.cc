// DataNode moving real images between real TCP contexts in one process: root and child, a chain
// through a relay, a root with two children, the two-tree broadcast (two parents a node), a
// child that connects before its parent has its plan, and a chunk that lands corrupt and is
// fetched again.
#include "replicator/pipeline/data_node.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/replicator/pipeline/pipeline_cluster.h"

namespace imgcast::replicator::test {
namespace {

namespace tp = transport;

// Every node holds the source's bytes, and its whole-image digest is the source's.
void expect_copies(PipelineCluster& cluster, int size) {
  for (int rank = 0; rank < size; ++rank) {
    SCOPED_TRACE("rank " + std::to_string(rank));
    ASSERT_TRUE(cluster.node(rank).complete());
    EXPECT_EQ(cluster.node(rank).digest(), cluster.source_digest());
    EXPECT_TRUE(cluster.holds_source(rank));
    EXPECT_EQ(cluster.node(rank).bytes_verified(), cluster.source().size());
    EXPECT_EQ(cluster.node(rank).refetched(), 0u);
    EXPECT_FALSE(cluster.node(rank).failure());
  }
}

TEST(DataNodeTransfer, RootAndChildMoveAMultiChunkImage) {
  PipelineCluster cluster({.topology = "chain", .size = 2});
  ASSERT_GT(cluster.chunk_count(), 40u);
  std::vector<std::multiset<std::uint32_t>> arrivals(2);
  cluster.on_event = [&](int rank, tp::Completion& event) {
    if (const auto* arrived = std::get_if<tp::WriteArrived>(&event)) {
      arrivals[rank].insert(arrived->imm);
    }
  };
  cluster.start_all();
  ASSERT_TRUE(cluster.run_until([&] { return cluster.all_complete(); }));
  expect_copies(cluster, 2);
  // Each chunk was written once, none twice.
  EXPECT_EQ(arrivals[1].size(), cluster.chunk_count());
  EXPECT_EQ(std::set<std::uint32_t>(arrivals[1].begin(), arrivals[1].end()).size(),
            cluster.chunk_count());
  EXPECT_TRUE(arrivals[0].empty());
}

TEST(DataNodeTransfer, ChainThroughARelay) {
  PipelineCluster cluster({.topology = "chain", .size = 3});
  cluster.start_all();
  ASSERT_TRUE(cluster.run_until([&] { return cluster.all_complete(); }));
  expect_copies(cluster, 3);
}

TEST(DataNodeTransfer, RootWithTwoChildren) {
  PipelineCluster cluster({.topology = "kary:2", .size = 3});
  ASSERT_EQ(cluster.topology().children(0).size(), 2u);
  cluster.start_all();
  ASSERT_TRUE(cluster.run_until([&] { return cluster.all_complete(); }));
  expect_copies(cluster, 3);
}

TEST(DataNodeTransfer, TwoTreesGiveEveryNodeTwoParents) {
  PipelineCluster cluster({.topology = "twotree", .size = 4});
  ASSERT_EQ(cluster.topology().trees(), 2);
  std::vector<std::vector<std::uint32_t>> arrivals(4);
  cluster.on_event = [&](int rank, tp::Completion& event) {
    if (const auto* arrived = std::get_if<tp::WriteArrived>(&event)) {
      arrivals[rank].push_back(arrived->imm);
    }
  };
  cluster.start_all();
  for (int rank = 1; rank < 4; ++rank) {
    EXPECT_EQ(cluster.node(rank).trees(), 2);
    EXPECT_NE(cluster.topology().parent(rank, 0), cluster.topology().parent(rank, 1));
  }
  ASSERT_TRUE(cluster.run_until([&] { return cluster.all_complete(); }));
  expect_copies(cluster, 4);
  for (int rank = 1; rank < 4; ++rank) {
    EXPECT_EQ(arrivals[rank].size(), cluster.chunk_count()) << "rank " << rank;
  }
}

TEST(DataNodeTransfer, ChildThatConnectsBeforeItsParentsPlanIsServedOnceItHasOne) {
  PipelineCluster cluster({.topology = "chain", .size = 2});
  cluster.start(1);  // the root's channel listens but has no DataNode yet
  for (int i = 0; i < 20; ++i) {
    cluster.step();
  }
  EXPECT_EQ(cluster.node(1).chunks_verified(), 0u);
  EXPECT_FALSE(cluster.node(1).orphaned(0));
  cluster.start(0);
  ASSERT_TRUE(cluster.run_until([&] { return cluster.all_complete(); }));
  expect_copies(cluster, 2);
}

TEST(DataNodeTransfer, CorruptChunkIsFetchedAgainAndTheCopyCompletes) {
  PipelineCluster cluster({.topology = "chain", .size = 3});
  constexpr std::uint32_t kBad = 5;
  std::vector<int> arrivals_of_bad(3);
  // The relay's copy of chunk kBad is damaged once, after the transport has landed it and before
  // the node checks it (as a flipped bit on the way would be).
  cluster.on_event = [&](int rank, tp::Completion& event) {
    const auto* arrived = std::get_if<tp::WriteArrived>(&event);
    if (arrived == nullptr || arrived->imm != kBad)
      return;
    ++arrivals_of_bad[rank];
    if (rank == 1 && arrivals_of_bad[1] == 1) {
      cluster.image(1).bytes()[cluster.chunk_offset(kBad) + 100] ^= std::byte{0x5a};
    }
  };
  cluster.start_all();
  ASSERT_TRUE(cluster.run_until([&] { return cluster.all_complete(); }));
  EXPECT_EQ(arrivals_of_bad[1], 2);  // once corrupt, once again
  EXPECT_EQ(arrivals_of_bad[2], 1);  // the leaf only ever got the good one
  EXPECT_EQ(cluster.node(1).refetched(), 1u);
  EXPECT_EQ(cluster.node(2).refetched(), 0u);
  for (int rank = 0; rank < 3; ++rank) {
    EXPECT_EQ(cluster.node(rank).digest(), cluster.source_digest()) << "rank " << rank;
    EXPECT_TRUE(cluster.holds_source(rank)) << "rank " << rank;
  }
  EXPECT_FALSE(cluster.node(1).orphaned(0));
}

TEST(DataNodeTransfer, ParentThatKeepsSendingCorruptChunksIsGivenUp) {
  PipelineCluster cluster({.topology = "chain", .size = 2});
  cluster.on_event = [&](int rank, tp::Completion& event) {
    if (const auto* arrived = std::get_if<tp::WriteArrived>(&event); arrived && rank == 1) {
      cluster.image(1).bytes()[cluster.chunk_offset(arrived->imm)] ^= std::byte{1};
    }
  };
  cluster.start_all();
  ASSERT_TRUE(cluster.run_until([&] { return cluster.node(1).orphaned(0).has_value(); }));
  EXPECT_NE(cluster.node(1).orphaned(0)->find("chunks that failed their xxh3-64 check"),
            std::string::npos)
      << *cluster.node(1).orphaned(0);
  EXPECT_EQ(cluster.node(1).refetched(), DataNode::kMaxBadChunksPerParent + 1);
  EXPECT_EQ(cluster.node(1).chunks_verified(), 0u);
  EXPECT_FALSE(cluster.node(1).failure());  // an orphan, not a failed node
}

// A byte changed in the staging mapping after its chunk was checked (what a stranger holding a
// sniffed UCX or verbs rkey could do: those cannot be bound to one connection) is caught by
// freeze(), which hashes the mapping again as it lies; an untouched copy freezes to the source's
// digest, and the digest of the chunks as they arrived cannot tell the two apart.
TEST(DataNodeFreeze, AByteChangedAfterItsCheckIsCaughtByTheRehash) {
  PipelineCluster cluster({.topology = "kary:2", .size = 3});
  cluster.start_all();
  ASSERT_TRUE(cluster.run_until([&] { return cluster.all_complete(); }));
  expect_copies(cluster, 3);
  cluster.image(2).bytes()[cluster.chunk_offset(7) + 3] ^= std::byte{0x01};
  EXPECT_EQ(cluster.node(2).digest(), cluster.source_digest());  // the arrival-time digest
  EXPECT_NE(cluster.node(2).freeze(), cluster.source_digest());
  EXPECT_EQ(cluster.node(1).freeze(), cluster.source_digest());
  // Frozen once: the same answer again, however the bytes move on.
  cluster.image(2).bytes()[cluster.chunk_offset(7) + 3] ^= std::byte{0x01};
  EXPECT_NE(cluster.node(2).freeze(), cluster.source_digest());
}

}  // namespace
}  // namespace imgcast::replicator::test
