// Error lines name at most kNamedHosts hosts, then how many more (--json keeps them all).
#include "replicator/session/host_names.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace imgcast::replicator {
namespace {

std::vector<std::string> hosts(int count) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i)
    names.push_back(fmt::format("n{}", i));
  return names;
}

TEST(HostNames, AShortListIsNamedWhole) {
  EXPECT_EQ(name_at_most({}), "");
  EXPECT_EQ(name_at_most(hosts(3)), "n0, n1, n2");
  EXPECT_EQ(name_at_most(hosts(10)), "n0, n1, n2, n3, n4, n5, n6, n7, n8, n9");
}

TEST(HostNames, ALongListNamesTenAndCountsTheRest) {
  EXPECT_EQ(name_at_most(hosts(1000)), "n0, n1, n2, n3, n4, n5, n6, n7, n8, n9 and 990 more");
  EXPECT_EQ(name_at_most(hosts(11), "; ", 2), "n0; n1 and 9 more");
}

}  // namespace
}  // namespace imgcast::replicator
