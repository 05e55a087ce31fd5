#include "cli/launch/node_claim.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "replicator/errors.h"

namespace imgcast::cli::launch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class NodeClaimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("imgcast-claim-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    dst_ = dir_ / "app.sif";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  fs::path dst_;
};

TEST_F(NodeClaimTest, StagedOnlyForTheSameJobAndWhileTheFileIsThere) {
  {
    NodeClaim claim(dst_, 1s);
    EXPECT_EQ(claim.state("12", "12.0"), NodeState::kNothing);
    std::ofstream(dst_) << "image";
    claim.record_staged("12");
  }
  NodeClaim again(dst_, 1s);
  EXPECT_EQ(again.state("12", "12.1"), NodeState::kStaged);
  EXPECT_EQ(again.state("13", "13.0"), NodeState::kNothing);
  fs::remove(dst_);
  EXPECT_EQ(again.state("12", "12.1"), NodeState::kNothing);
}

TEST_F(NodeClaimTest, FailedOnlyForTheSameStep) {
  {
    NodeClaim claim(dst_, 1s);
    claim.record_failed("12", "12.0");
  }
  NodeClaim again(dst_, 1s);
  EXPECT_EQ(again.state("12", "12.0"), NodeState::kFailed);
  EXPECT_EQ(again.state("12", "12.1"), NodeState::kNothing);
}

TEST_F(NodeClaimTest, AnotherProcessWaitsForTheHolder) {
  NodeClaim holder(dst_, 1s);
  // A second task of the node (a real process: flock is per open file, per process) cannot
  // take the claim while we hold it...
  const pid_t child = ::fork();
  if (child == 0) {
    try {
      NodeClaim contender(dst_, 200ms);
      ::_exit(0);
    } catch (const replicator::TransferError&) {
      ::_exit(7);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(WEXITSTATUS(status), 7);
}

TEST_F(NodeClaimTest, MissingDirectoryIsAnInputError) {
  EXPECT_THROW(NodeClaim(dir_ / "missing" / "app.sif", 1s), replicator::InputError);
}

}  // namespace
}  // namespace imgcast::cli::launch
