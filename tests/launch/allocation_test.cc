#include "cli/launch/allocation.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "replicator/errors.h"

namespace imgcast::cli::launch {
namespace {

using Hosts = std::vector<std::string>;

std::filesystem::path write_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("imgcast-alloc-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(path) << text;
  return path;
}

TEST(Allocation, NoneOutsideAnyScheduler) {
  EXPECT_FALSE(detect_allocation(table_environment({{"HOME", "/root"}})).has_value());
}

TEST(Allocation, SlurmNodelistExpandedInOrder) {
  const auto a = detect_allocation(table_environment(
      {{"SLURM_JOB_ID", "42"}, {"SLURM_JOB_NODELIST", "node[001-002,007],gpu[1-2]"}}));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->scheduler, Scheduler::kSlurm);
  EXPECT_EQ(a->job_id, "42");
  EXPECT_EQ(a->hosts, (Hosts{"node001", "node002", "node007", "gpu1", "gpu2"}));
}

TEST(Allocation, SlurmFallsBackToTheOldVariable) {
  const auto a = detect_allocation(
      table_environment({{"SLURM_JOB_ID", "7"}, {"SLURM_NODELIST", "n[1-2]"}}));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->hosts, (Hosts{"n1", "n2"}));
}

TEST(Allocation, SlurmWithoutNodelistSaysWhatToDo) {
  EXPECT_THROW(detect_allocation(table_environment({{"SLURM_JOB_ID", "7"}})),
               replicator::InputError);
}

TEST(Allocation, SlurmBadSyntaxIsAnInputError) {
  EXPECT_THROW(detect_allocation(table_environment(
                   {{"SLURM_JOB_ID", "7"}, {"SLURM_JOB_NODELIST", "node[1-"}})),
               replicator::InputError);
}

TEST(Allocation, SlurmShellMetacharactersRefused) {
  EXPECT_THROW(detect_allocation(table_environment(
                   {{"SLURM_JOB_ID", "7"}, {"SLURM_JOB_NODELIST", "a;rm -rf,b"}})),
               replicator::InputError);
}

TEST(Allocation, PbsNodefileFoldsOneLinePerCore) {
  const auto file = write_file("pbs", "cn01\ncn01\ncn01\ncn02\ncn02\n\ncn03\ncn01\n");
  const auto a = detect_allocation(
      table_environment({{"PBS_NODEFILE", file.string()}, {"PBS_JOBID", "99.server"}}));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->scheduler, Scheduler::kPbs);
  EXPECT_EQ(a->job_id, "99.server");
  EXPECT_EQ(a->hosts, (Hosts{"cn01", "cn02", "cn03"}));
  std::filesystem::remove(file);
}

TEST(Allocation, PbsNodefileMissingOrEmpty) {
  EXPECT_THROW(detect_allocation(table_environment({{"PBS_NODEFILE", "/nonexistent/nodes"}})),
               replicator::InputError);
  const auto empty = write_file("empty", "\n\n");
  EXPECT_THROW(detect_allocation(table_environment({{"PBS_NODEFILE", empty.string()}})),
               replicator::InputError);
  std::filesystem::remove(empty);
}

TEST(Allocation, LsfHostfileAndMcpuHosts) {
  const auto file = write_file("lsf", "h1\nh1\nh2\n");
  const auto a = detect_allocation(
      table_environment({{"LSB_DJOB_HOSTFILE", file.string()}, {"LSB_JOBID", "5"}}));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->scheduler, Scheduler::kLsf);
  EXPECT_EQ(a->hosts, (Hosts{"h1", "h2"}));
  std::filesystem::remove(file);

  const auto b = detect_allocation(table_environment({{"LSB_MCPU_HOSTS", "h1 4 h2 4 h3 1"}}));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->hosts, (Hosts{"h1", "h2", "h3"}));
  EXPECT_THROW(parse_lsf_mcpu_hosts("h1 4 h2"), replicator::InputError);
  EXPECT_THROW(parse_lsf_mcpu_hosts("h1 x"), replicator::InputError);
  EXPECT_THROW(parse_lsf_mcpu_hosts(""), replicator::InputError);
}

TEST(Allocation, SlurmWinsOverPbsOverLsf) {
  const auto file = write_file("pbs2", "p1\n");
  const auto a = detect_allocation(table_environment({{"SLURM_JOB_ID", "1"},
                                                      {"SLURM_JOB_NODELIST", "s1"},
                                                      {"PBS_NODEFILE", file.string()},
                                                      {"LSB_MCPU_HOSTS", "l1 1"}}));
  EXPECT_EQ(a->hosts, (Hosts{"s1"}));
  const auto b = detect_allocation(
      table_environment({{"PBS_NODEFILE", file.string()}, {"LSB_MCPU_HOSTS", "l1 1"}}));
  EXPECT_EQ(b->hosts, (Hosts{"p1"}));
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace imgcast::cli::launch
