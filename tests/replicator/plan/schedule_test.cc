// The alpha-beta model and the automatic choice it drives, over a table of (N, S, beta) cases.
#include "replicator/plan/schedule.h"

#include <gtest/gtest.h>

namespace imgcast::replicator {
namespace {

constexpr double kMbit = 1e6 / 8;  // bytes per second in one Mbit/s
constexpr std::uint64_t kMiB = 1 << 20;

TEST(Schedule, ModelMatchesTheClosedForms) {
  const LinkModel link{0, 200 * kMbit};
  const std::uint64_t size = 256 * kMiB;
  const double ideal = size / link.beta_bytes_per_second;
  // Chain: (k + N - 2) steps of C / beta.
  const auto chain = make_topology("chain", 16, 0);
  EXPECT_NEAR(predict_seconds(*chain, size, 1 * kMiB, link), ideal * (256 + 14) / 256, 1e-9);
  // Binomial: the root sends every chunk log2 N times; one chunk needs log2 N steps.
  const auto binomial = make_topology("binomial", 16, 0);
  EXPECT_NEAR(predict_seconds(*binomial, size, 1 * kMiB, link), ideal * (255 * 4 + 4) / 256, 1e-9);
  EXPECT_NEAR(predict_seconds(*binomial, 1 * kMiB, 1 * kMiB, link),
              4 * kMiB / link.beta_bytes_per_second, 1e-9);
  // kary:2 on 7 nodes: the last leaf is the second child of the second child (2 + 2 steps).
  EXPECT_NEAR(predict_seconds(*make_topology("kary:2", 7, 0), 1 * kMiB, 1 * kMiB, link),
              4 * kMiB / link.beta_bytes_per_second, 1e-9);
  // Two-tree: no node sends more than the image once (fan-out 1), and the fill is about twice
  // the depth: close to the ideal at any N.
  const auto two = make_topology("twotree", 1000, 0);
  const double k = 256;
  const double two_seconds = predict_seconds(*two, size, 1 * kMiB, link);
  EXPECT_GE(two_seconds, ideal * (k - 1 + two->depth()) / k);
  EXPECT_LE(two_seconds, ideal * (k - 1 + 2 * two->depth() + 2) / k);
  EXPECT_EQ(predict_seconds(*chain, 0, 1 * kMiB, link), 0);
  EXPECT_EQ(predict_seconds(*make_topology("chain", 1, 0), size, 1 * kMiB, link), 0);
}

struct Case {
  int nodes;
  std::uint64_t bytes;
  double mbit;
  const char* expected_topology;
};

class AutoSchedule : public ::testing::TestWithParam<Case> {};

TEST_P(AutoSchedule, PicksTheFastestPredictedPlan) {
  const Case c = GetParam();
  const LinkModel link{50e-6, c.mbit * kMbit};
  const Schedule s = choose_schedule(c.nodes, c.bytes, std::nullopt, std::nullopt, link);
  EXPECT_EQ(s.topology, c.expected_topology) << s.reason;
  EXPECT_GE(s.chunk_bytes, 64u << 10);
  EXPECT_LE(s.chunk_bytes, 512u << 10);
  // Nothing in the search space beats the choice (the two-tree only by more than its margin).
  for (const char* t : {"chain", "binomial", "kary:2", "kary:4", "twotree"}) {
    for (std::uint32_t chunk = 64 << 10; chunk <= (512u << 10); chunk *= 2) {
      const auto other = make_topology(t, c.nodes, 0);
      const double margin = other->trees() > 1 && s.topology != "twotree" ? 1.03 : 1.0;
      EXPECT_LE(s.predicted_seconds,
                predict_seconds(*other, c.bytes, chunk, link) * margin + 1e-12)
          << t << " " << chunk;
    }
  }
  EXPECT_NE(s.reason.find(s.topology), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Table, AutoSchedule,
    ::testing::Values(
        // Large images: the pipelined chain is within a few percent of S / beta.
        Case{16, 256 * kMiB, 200, "chain"}, Case{64, 4096 * kMiB, 100000, "chain"},
        Case{4, 1024 * kMiB, 10000, "chain"}, Case{32, 256 * kMiB, 200, "chain"},
        // Many nodes: the chain's N-long fill costs more than the two-tree's margin.
        Case{1000, 8192 * kMiB, 25000, "twotree"}, Case{1000, 256 * kMiB, 200, "twotree"},
        Case{256, 1024 * kMiB, 10000, "twotree"},
        // Tiny images on many nodes: depth dominates, a bushy tree wins.
        Case{1000, 64 << 10, 100000, "binomial"}, Case{256, 64 << 10, 10000, "binomial"}));

TEST(Schedule, GivenValuesAreKept) {
  const LinkModel link;
  const Schedule s = choose_schedule(8, 100 * kMiB, std::string("kary:2"), 4u << 20, link);
  EXPECT_EQ(s.topology, "kary:2");
  EXPECT_EQ(s.chunk_bytes, 4u << 20);
  EXPECT_GT(s.predicted_seconds, 0);
  // Only the chunk size left to the model.
  const Schedule c = choose_schedule(8, 100 * kMiB, std::string("binomial"), std::nullopt, link);
  EXPECT_EQ(c.topology, "binomial");
  EXPECT_THROW(choose_schedule(8, 1, std::string("star"), std::nullopt, link),
               std::invalid_argument);
}

TEST(Schedule, SmallerChunksForMoreNodesOnTheChain) {
  const LinkModel link{50e-6, 25e6};
  const auto few = choose_schedule(4, 1024 * kMiB, std::string("chain"), std::nullopt, link);
  const auto many = choose_schedule(512, 1024 * kMiB, std::string("chain"), std::nullopt, link);
  EXPECT_LT(many.chunk_bytes, few.chunk_bytes);
}

}  // namespace
}  // namespace imgcast::replicator
