// The pure half of PMIx detection: when a process counts as a PMIx client, how the node list a
// server gives becomes the host list, and where PMIx stands among the schedulers. The query
// itself is exercised against real PMIx servers (mpirun, Slurm's mpi/pmix) in tests/launchers.
#include "cli/launch/pmix_allocation.h"

#include <gtest/gtest.h>

#include "cli/launch/allocation.h"
#include "cli/launch/node_identity.h"
#include "replicator/errors.h"

namespace imgcast::cli::launch {
namespace {

using Hosts = std::vector<std::string>;

PmixJob job(std::string list, std::string self, std::uint32_t rank = 0, std::uint32_t size = 1) {
  PmixJob j;
  j.nspace = "1469120513";
  j.rank = rank;
  j.size = size;
  j.hostname = std::move(self);
  j.node_list = std::move(list);
  j.node_list_key = "PMIX_NODE_LIST";
  j.process_nodes = j.node_list;
  return j;
}

// The variables Open MPI 4.1's mpirun exports to its processes (as seen under it).
std::map<std::string, std::string, std::less<>> pmix_variables() {
  return {{"PMIX_NAMESPACE", "1469120513"},
          {"PMIX_RANK", "0"},
          {"PMIX_SERVER_URI41", "pmix-server.5859;tcp4://127.0.0.1:41853"}};
}

TEST(PmixJobVariables, NamespaceAndAServerUriMakeAPmixClient) {
  EXPECT_TRUE(in_pmix_job(table_environment(pmix_variables())));
  for (const char* uri : {"PMIX_SERVER_URI", "PMIX_SERVER_URI2", "PMIX_SERVER_URI21",
                          "PMIX_SERVER_URI3", "PMIX_SERVER_URI4"}) {
    EXPECT_TRUE(in_pmix_job(
        table_environment({{"PMIX_NAMESPACE", "slurm.pmix.2.0"}, {uri, "pmix-server.1;x"}})))
        << uri;
  }
}

TEST(PmixJobVariables, EitherAloneIsNot) {
  EXPECT_FALSE(in_pmix_job(table_environment({{"PMIX_NAMESPACE", "x"}})));
  EXPECT_FALSE(in_pmix_job(table_environment({{"PMIX_SERVER_URI41", "pmix-server.1;x"}})));
  EXPECT_FALSE(in_pmix_job(table_environment({{"PMIX_RANK", "0"}})));
}

TEST(PmixHosts, TableOfNodeLists) {
  struct Case {
    const char* list;
    const char* self;
    Hosts want;
  };
  const Case cases[] = {
      {"h0,h1,h2,h3", "h0", {"h0", "h1", "h2", "h3"}},  // mpirun, Slurm: already first
      {"h0,h1,h2,h3", "h2", {"h2", "h0", "h1", "h3"}},  // this host first, rest in order
      {"h3,h1,h0", "h0", {"h0", "h3", "h1"}},           // the server's order is kept
      {"vm", "vm", {"vm"}},                             // a one-node job
      {"node[001-003]", "node002", {"node002", "node001", "node003"}},  // bracketed
      {"n1,n1,n2,n1", "n2", {"n2", "n1"}},                              // repeats folded
      {"a.example.org,b.example.org", "b.example.org", {"b.example.org", "a.example.org"}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(pmix_hosts(job(c.list, c.self)), c.want) << c.list << " as " << c.self;
  }
}

TEST(PmixHosts, BadListsAreInputErrors) {
  for (const char* list : {"", "h[1-", "h[3-1]", "h0,,h1"}) {
    EXPECT_THROW(pmix_hosts(job(list, "h0")), replicator::InputError) << list;
  }
}

TEST(PmixHosts, ThisHostMissingNamesTheListAndWhatToDo) {
  try {
    pmix_hosts(job("h0,h1", "login1"));
    FAIL() << "no error";
  } catch (const replicator::InputError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("PMIX_NODE_LIST"), std::string::npos) << what;
    EXPECT_NE(what.find("login1"), std::string::npos) << what;
    EXPECT_NE(what.find("--hosts"), std::string::npos) << what;
  }
}

TEST(PmixAllocation, DetectedLastWithRankAndSize) {
  const auto a = detect_allocation(table_environment(pmix_variables()),
                                   [] { return job("h0,h1,h2,h3", "h1", 1, 4); });
  ASSERT_TRUE(a);
  EXPECT_EQ(a->scheduler, Scheduler::kPmix);
  EXPECT_STREQ(to_string(a->scheduler), "pmix");
  EXPECT_EQ(a->job_id, "1469120513");
  EXPECT_EQ(a->origin, "PMIx PMIX_NODE_LIST");
  EXPECT_EQ(a->hosts, (Hosts{"h1", "h0", "h2", "h3"}));
  EXPECT_EQ(a->rank, 1u);
  EXPECT_EQ(a->processes, 4u);
}

TEST(PmixAllocation, ServerNotAskedOutsideAPmixJob) {
  bool asked = false;
  const auto query = [&asked] {
    asked = true;
    return job("h0", "h0");
  };
  EXPECT_FALSE(detect_allocation(table_environment({{"HOME", "/root"}}), query));
  EXPECT_FALSE(asked);
}

TEST(PmixAllocation, SlurmWinsOverPmix) {
  // srun --mpi=pmix: Slurm names the whole allocation, PMIx only the step.
  bool asked = false;
  auto env = pmix_variables();
  env["SLURM_JOB_ID"] = "2";
  env["SLURM_JOB_NODELIST"] = "h[0-3]";
  const auto a = detect_allocation(table_environment(env), [&asked] {
    asked = true;
    return job("h0,h1", "h0");
  });
  ASSERT_TRUE(a);
  EXPECT_EQ(a->scheduler, Scheduler::kSlurm);
  EXPECT_EQ(a->hosts.size(), 4u);
  EXPECT_FALSE(asked);
}

TEST(PmixAllocation, ShellMetacharactersRefused) {
  EXPECT_THROW(detect_allocation(table_environment(pmix_variables()),
                                 [] { return job("h0,a;rm -rf /", "h0"); }),
               replicator::InputError);
}

TEST(PmixAllocation, OtherSchedulersKeepRankZero) {
  const auto a = detect_allocation(
      table_environment({{"SLURM_JOB_ID", "7"}, {"SLURM_JOB_NODELIST", "n[1-2]"}}));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->rank, 0u);
  EXPECT_EQ(a->processes, 1u);
}

// The hook under a PMIx launcher: the node list and this host's place in it come from the server.
TEST(PmixHook, NodeIndexIsThisHostsPlaceInTheNodeList) {
  auto env = pmix_variables();
  env["PMIX_RANK"] = "5";  // two tasks per node: rank 5 is on the third node
  const PmixQuery query = [] { return job("h0,h1,h2,h3", "h2", 5, 8); };
  const auto id = detect_node_identity(table_environment(env), {}, &query);
  EXPECT_EQ(id.launcher, "pmix");
  EXPECT_EQ(id.node, 2);
  EXPECT_EQ(id.nodes, 4);
  EXPECT_EQ(id.hosts, (Hosts{"h0", "h1", "h2", "h3"}));
  EXPECT_EQ(id.job, "1469120513");
}

TEST(PmixHook, TheJobsNodesNotTheAllocation) {
  PmixJob j = job("h0,h1", "h1", 1, 2);
  j.node_list = "h0,h1,h2,h3";  // PMIX_ALLOCATED_NODELIST: nodes without a task take no part
  j.node_list_key = "PMIX_ALLOCATED_NODELIST";
  const PmixQuery query = [j] { return j; };
  const auto id = detect_node_identity(table_environment(pmix_variables()), {}, &query);
  EXPECT_EQ(id.node, 1);
  EXPECT_EQ(id.nodes, 2);
}

TEST(PmixHook, NodesGivenOrOpenMpiFirstMeansTheServerIsNotAsked) {
  bool asked = false;
  const PmixQuery query = [&asked] {
    asked = true;
    return job("h0,h1", "h0");
  };
  const auto given = detect_node_identity(table_environment(pmix_variables()),
                                          {std::nullopt, 3, std::nullopt, std::nullopt}, &query);
  EXPECT_EQ(given.nodes, 3);
  EXPECT_EQ(given.node, 0);  // PMIX_RANK
  auto env = pmix_variables();
  env["OMPI_COMM_WORLD_RANK"] = "1";
  env["OMPI_COMM_WORLD_SIZE"] = "2";
  const auto ompi = detect_node_identity(table_environment(env), {}, &query);
  EXPECT_EQ(ompi.launcher, "open-mpi");
  EXPECT_FALSE(asked);
}

TEST(PmixHook, ThisHostMissingFromTheNodeListSaysWhatToPass) {
  const PmixQuery query = [] { return job("h0,h1", "login1"); };
  EXPECT_THROW(detect_node_identity(table_environment(pmix_variables()), {}, &query),
               replicator::InputError);
}

}  // namespace
}  // namespace imgcast::cli::launch
