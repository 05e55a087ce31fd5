#include "cli/launch/hostlist.h"

#include <gtest/gtest.h>

#include "replicator/errors.h"

namespace imgcast::cli::launch {
namespace {

using Hosts = std::vector<std::string>;

struct Case {
  const char* expression;
  Hosts hosts;
};

class HostlistExpands : public ::testing::TestWithParam<Case> {};

TEST_P(HostlistExpands, ToTheHostsSlurmNames) {
  EXPECT_EQ(expand_hostlist(GetParam().expression, "SLURM_JOB_NODELIST"), GetParam().hosts);
}

INSTANTIATE_TEST_SUITE_P(
    Table, HostlistExpands,
    ::testing::Values(
        Case{"node1", {"node1"}}, Case{"a,b,c", {"a", "b", "c"}},
        Case{"node[1-3]", {"node1", "node2", "node3"}},
        Case{"node[001-004,007]", {"node001", "node002", "node003", "node004", "node007"}},
        Case{"node[001-004,007],gpu[1-2]",
             {"node001", "node002", "node003", "node004", "node007", "gpu1", "gpu2"}},
        Case{"n[08-11]", {"n08", "n09", "n10", "n11"}},
        Case{"n[98-101]", {"n98", "n99", "n100", "n101"}},
        Case{"rack[1-2]-n[1-2]", {"rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"}},
        Case{"login,c[5],x[0-0]", {"login", "c5", "x0"}},
        Case{"a[1,3]b", {"a1b", "a3b"}}, Case{"[1-2]", {"1", "2"}},
        Case{"gpu-a100-[09-10].cluster", {"gpu-a100-09.cluster", "gpu-a100-10.cluster"}}));

class HostlistRejects : public ::testing::TestWithParam<const char*> {};

TEST_P(HostlistRejects, WithAOneLineErrorNamingTheVariable) {
  try {
    expand_hostlist(GetParam(), "SLURM_JOB_NODELIST");
    FAIL() << "accepted '" << GetParam() << "'";
  } catch (const replicator::InputError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("SLURM_JOB_NODELIST"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, HostlistRejects,
                         ::testing::Values("", "  ", "node[1-3", "node1-3]", "node[]",
                                           "node[3-1]", "node[a-b]", "node[1-2-3]",
                                           "node[[1-2]]", "a,,b", "a,", ",a", "node[1,]",
                                           "node[-1]", "n[1-99999999999999999999]",
                                           "n[0-2000000]", "a[0-1023]b[0-1023]c[0-1]"));

}  // namespace
}  // namespace imgcast::cli::launch
