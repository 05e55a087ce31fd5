// The re-parenting planner on its own: who adopts an orphan, when an adopter is passed over, and
// when a node is given up on. Pure: no processes, no sockets.
#include "replicator/plan/reparent_planner.h"

#include <gtest/gtest.h>

namespace imgcast::replicator {
namespace {

using Kind = ReparentPlanner::Decision::Kind;
using namespace std::chrono_literals;
const auto kNow = ReparentPlanner::Clock::time_point{} + 1h;

ReparentPlanner ready_planner(const Topology& topology) {
  ReparentPlanner planner(topology, 1000ms);
  for (int place = 1; place < topology.size(); ++place) {
    planner.ready(place);
  }
  return planner;
}

TEST(ReparentPlanner, AChildOfTheRootsChildIsAdoptedByTheRoot) {
  const auto chain = kary_tree(4, 0, 1);  // 0 -> 1 -> 2 -> 3
  auto planner = ready_planner(*chain);
  const auto decision = planner.orphaned(2, 0, kNow);
  EXPECT_EQ(decision.kind, Kind::kRootAdopts);
  EXPECT_EQ(decision.lost, 1);
  EXPECT_EQ(decision.adopter, 0);
  EXPECT_EQ(planner.parent(2, 0), 0);
  EXPECT_EQ(planner.reparents(2), 1);
  EXPECT_FALSE(planner.serves(1)) << "a parent its child gave up on adopts no one";
}

TEST(ReparentPlanner, TheNearestServingAncestorIsAskedAndAnswers) {
  const auto chain = kary_tree(5, 0, 1);  // 0 -> 1 -> 2 -> 3 -> 4
  auto planner = ready_planner(*chain);
  const auto decision = planner.orphaned(4, 0, kNow);
  EXPECT_EQ(decision.kind, Kind::kAskAdopter);
  EXPECT_EQ(decision.lost, 3);
  EXPECT_EQ(decision.adopter, 2);
  EXPECT_FALSE(planner.adopted(1, 4, 0)) << "only the adopter asked may answer";
  EXPECT_FALSE(planner.adopted(-1, 3, 0)) << "a node outside the transfer adopts no one";
  EXPECT_TRUE(planner.adopted(2, 4, 0));
  EXPECT_FALSE(planner.adopted(2, 4, 0)) << "answered once";
}

TEST(ReparentPlanner, TwoDeadRelaysInARowAreBothPassedOver) {
  const auto chain = kary_tree(5, 0, 1);
  auto planner = ready_planner(*chain);
  (void)planner.failed(1);
  (void)planner.failed(2);
  const auto decision = planner.orphaned(3, 0, kNow);
  EXPECT_EQ(decision.kind, Kind::kRootAdopts);
  EXPECT_EQ(decision.lost, 2);
}

TEST(ReparentPlanner, ANodeNotReadyYetIsNoAdopter) {
  const auto chain = kary_tree(4, 0, 1);
  ReparentPlanner planner(*chain, 1000ms);
  planner.ready(3);
  // 1 is not ready: 3, losing 2, climbs past it to the root.
  EXPECT_EQ(planner.orphaned(3, 0, kNow).kind, Kind::kRootAdopts);
}

TEST(ReparentPlanner, AnAdopterThatFailsIsReplacedFromAboveIt) {
  const auto chain = kary_tree(5, 0, 1);
  auto planner = ready_planner(*chain);
  ASSERT_EQ(planner.orphaned(4, 0, kNow).adopter, 2);
  const auto retries = planner.failed(2);
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].orphan, 4);
  EXPECT_EQ(retries[0].adopter, 2);
  // 2 is the orphan's parent of record now, so the climb starts above it.
  const auto next = planner.orphaned(4, 0, kNow);
  EXPECT_EQ(next.kind, Kind::kAskAdopter);
  EXPECT_EQ(next.lost, 2);
  EXPECT_EQ(next.adopter, 1);
  EXPECT_EQ(planner.reparents(4), 2);
}

TEST(ReparentPlanner, ASilentAdopterIsOverdueAfterTheAnswerTimeout) {
  const auto chain = kary_tree(5, 0, 1);
  auto planner = ready_planner(*chain);
  ASSERT_EQ(planner.orphaned(4, 0, kNow).adopter, 2);
  EXPECT_TRUE(planner.overdue(kNow + 1000ms).empty()) << "not before the timeout";
  const auto retries = planner.overdue(kNow + 1001ms);
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].adopter, 2);
  EXPECT_TRUE(planner.overdue(kNow + 5s).empty()) << "reported once";
  EXPECT_FALSE(planner.adopted(2, 4, 0)) << "a late answer no longer counts";
}

TEST(ReparentPlanner, AfterEightNewParentsTheNodeIsGivenUpOn) {
  const auto chain = kary_tree(3, 0, 1);  // 0 -> 1 -> 2
  auto planner = ready_planner(*chain);
  for (int i = 0; i < ReparentPlanner::kMaxReparents; ++i) {
    EXPECT_EQ(planner.orphaned(2, 0, kNow).kind, Kind::kRootAdopts) << i;
  }
  EXPECT_EQ(planner.orphaned(2, 0, kNow).kind, Kind::kGiveUp);
  EXPECT_EQ(planner.reparents(2), ReparentPlanner::kMaxReparents + 1);
}

TEST(ReparentPlanner, InATwoTreeTheClimbStaysInTheTreeWhereTheParentWasLost) {
  const auto topology = two_tree(9, 0);
  auto planner = ready_planner(*topology);
  for (int place = 1; place < 9; ++place) {
    const int tree1_parent = planner.parent(place, 1);
    const int tree0_parent = planner.parent(place, 0);
    const auto decision = planner.orphaned(place, 0, kNow);
    if (decision.kind == Kind::kGiveUp)
      continue;
    EXPECT_EQ(decision.lost, tree0_parent) << place;
    EXPECT_EQ(planner.parent(place, 1), tree1_parent) << "tree 1 untouched, place " << place;
  }
}

TEST(ReparentPlanner, RefusesATreeNotRootedAtZero) {
  const auto chain = kary_tree(3, 1, 1);  // rooted at 1: not a transfer's tree
  EXPECT_THROW(ReparentPlanner(*chain, 1000ms), std::invalid_argument);
}

}  // namespace
}  // namespace imgcast::replicator
