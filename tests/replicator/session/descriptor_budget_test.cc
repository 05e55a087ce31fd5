// The root's descriptor budget: one per agent plus its own, checked against the hard limit
// before any agent starts (a 2,000-node job under a 1,024 limit failed for everyone mid-setup).
#include "replicator/session/descriptor_budget.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include "replicator/errors.h"

namespace imgcast::replicator {
namespace {

TEST(DescriptorBudget, OnePerAgentPlusTheRootsOwn) {
  const auto tree = make_topology("binomial", 2000, 0);
  const DescriptorBudget budget = descriptor_budget(*tree, true);
  EXPECT_EQ(budget.control, 1999u);
  EXPECT_EQ(budget.data_children, tree->children(0).size());
  EXPECT_EQ(budget.launcher, 2u);
  EXPECT_GT(budget.total(), 2000u);
  EXPECT_LT(budget.total(), 2200u);
  // One launcher for the whole step holds no pipe per host.
  EXPECT_EQ(descriptor_budget(*tree, false).launcher, 0u);
  EXPECT_EQ(descriptor_budget(*make_topology("chain", 1, 0), true).control, 0u);
}

TEST(DescriptorBudget, RaisesTheSoftLimitWithinTheHardOne) {
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 512)
    GTEST_SKIP() << "hard limit " << saved.rlim_max << " is below what the test asks for";
  rlimit low = saved;
  low.rlim_cur = 128;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  DescriptorBudget budget;
  budget.control = 300;
  ensure_descriptors(budget, 301);
  rlimit now{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_GE(now.rlim_cur, 300u);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
}

TEST(DescriptorBudget, AHardLimitTooSmallIsABadInputNamingBothFigures) {
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_max == RLIM_INFINITY)
    GTEST_SKIP() << "no finite hard limit to exceed";
  DescriptorBudget budget;
  budget.control = limit.rlim_max + 1;
  try {
    ensure_descriptors(budget, budget.control + 1);
    FAIL() << "no error for a budget over the hard limit";
  } catch (const InputError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find(std::to_string(budget.total())), std::string::npos) << what;
    EXPECT_NE(what.find("allows " + std::to_string(limit.rlim_max)), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace imgcast::replicator
