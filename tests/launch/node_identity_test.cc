#include "cli/launch/node_identity.h"

#include <gtest/gtest.h>

#include "replicator/errors.h"

namespace imgcast::cli::launch {
namespace {

TEST(NodeIdentity, SlurmStep) {
  const auto id = detect_node_identity(table_environment({{"SLURM_JOB_ID", "12"},
                                                          {"SLURM_STEP_ID", "3"},
                                                          {"SLURM_NODEID", "2"},
                                                          {"SLURM_STEP_NUM_NODES", "4"},
                                                          {"SLURM_STEP_NODELIST", "n[1-4]"},
                                                          {"SLURMD_NODENAME", "n3"}}),
                                       {});
  EXPECT_EQ(id.launcher, "slurm");
  EXPECT_EQ(id.node, 2);
  EXPECT_EQ(id.nodes, 4);
  EXPECT_EQ(id.job, "12");
  EXPECT_EQ(id.step, "12.3");
  EXPECT_EQ(id.hosts, (std::vector<std::string>{"n1", "n2", "n3", "n4"}));
}

TEST(NodeIdentity, SlurmListThatDoesNotPutUsAtOurIndexIsNotTrusted) {
  const auto id = detect_node_identity(table_environment({{"SLURM_JOB_ID", "12"},
                                                          {"SLURM_NODEID", "0"},
                                                          {"SLURM_STEP_NUM_NODES", "2"},
                                                          {"SLURM_STEP_NODELIST", "n[1-2]"},
                                                          {"SLURMD_NODENAME", "n2"}}),
                                       {});
  EXPECT_TRUE(id.hosts.empty());
  EXPECT_EQ(id.step, "12.batch");
}

TEST(NodeIdentity, OpenMpiOneOrSeveralPerNode) {
  const auto one = detect_node_identity(table_environment({{"OMPI_COMM_WORLD_RANK", "3"},
                                                           {"OMPI_COMM_WORLD_SIZE", "4"},
                                                           {"OMPI_COMM_WORLD_LOCAL_SIZE", "1"},
                                                           {"PMIX_NAMESPACE", "prterun-x-1@1"}}),
                                        {});
  EXPECT_EQ(one.launcher, "open-mpi");
  EXPECT_EQ(one.node, 3);
  EXPECT_EQ(one.nodes, 4);
  EXPECT_EQ(one.job, "prterun-x-1@1");
  const auto two = detect_node_identity(table_environment({{"OMPI_COMM_WORLD_RANK", "5"},
                                                           {"OMPI_COMM_WORLD_SIZE", "8"},
                                                           {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                                           {"OMPI_MCA_ess_base_jobid", "77"}}),
                                        {});
  EXPECT_EQ(two.node, 2);
  EXPECT_EQ(two.nodes, 4);
  EXPECT_THROW(detect_node_identity(table_environment({{"OMPI_COMM_WORLD_RANK", "0"},
                                                       {"OMPI_COMM_WORLD_SIZE", "5"},
                                                       {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                                       {"OMPI_MCA_ess_base_jobid", "77"}}),
                                    {}),
               replicator::InputError);
}

TEST(NodeIdentity, PmixNeedsTheNodeCount) {
  const auto env = table_environment({{"PMIX_RANK", "1"}, {"PMIX_NAMESPACE", "ns"}});
  EXPECT_THROW(detect_node_identity(env, {}), replicator::InputError);
  const auto id = detect_node_identity(env, {std::nullopt, 3, std::nullopt, std::nullopt});
  EXPECT_EQ(id.node, 1);
  EXPECT_EQ(id.nodes, 3);
}

TEST(NodeIdentity, OptionsAloneOrNothing) {
  EXPECT_THROW(detect_node_identity(table_environment({}), {}), replicator::InputError);
  const auto id = detect_node_identity(table_environment({}), {1, 2, "job", "job.1"});
  EXPECT_EQ(id.launcher, "options");
  EXPECT_EQ(id.step, "job.1");
  EXPECT_THROW(detect_node_identity(table_environment({}), {2, 2, "job", std::nullopt}),
               replicator::InputError);
}

TEST(NodeIdentity, GarbageInALauncherVariable) {
  EXPECT_THROW(detect_node_identity(table_environment({{"SLURM_JOB_ID", "1"},
                                                       {"SLURM_NODEID", "x"},
                                                       {"SLURM_NNODES", "2"}}),
                                    {}),
               replicator::InputError);
  EXPECT_THROW(detect_node_identity(table_environment({{"SLURM_JOB_ID", "1"},
                                                       {"SLURM_NODEID", "2"},
                                                       {"SLURM_NNODES", "2"}}),
                                    {}),
               replicator::InputError);
}

TEST(NodeName, SlurmdNodenameWins) {
  EXPECT_EQ(this_node_name(table_environment({{"SLURMD_NODENAME", "cn7"}})), "cn7");
  EXPECT_FALSE(this_node_name(table_environment({})).empty());
}

}  // namespace
}  // namespace imgcast::cli::launch
