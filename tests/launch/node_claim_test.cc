#include "cli/launch/node_claim.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "replicator/errors.h"
#include "replicator/image/cache_record.h"

namespace imgcast::cli::launch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The tests run as root, and root owns what it creates: "ours" is geteuid(), and a planted file
// is one chowned to uid 65534 (nobody) afterwards.
constexpr uid_t kNobody = 65534;

class NodeClaimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("imgcast-claim-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    dst_ = dir_ / "app.sif";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path state_file() const { return dir_ / ".app.sif.imgcast-state"; }
  fs::path lock_file() const { return dir_ / ".app.sif.imgcast-lock"; }
  // DST as the hook leaves it: our copy with our cache record.
  void place_copy_with_record() {
    std::ofstream(dst_) << "image";
    fs::permissions(dst_, fs::perms(0644));
    replicator::UniqueFd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY));
    replicator::UniqueFd file(::open(dst_.c_str(), O_RDWR));
    replicator::CacheRecord record;
    record.source_key = "0123456789abcdef";
    record.image_bytes = 5;
    replicator::attach_cache_record(dir.get(), file.get(), "app.sif", record);
  }
  // A file another user (uid 65534) made first, mode 0600 like ours would be.
  static void plant(const fs::path& path, const std::string& text) {
    std::ofstream(path) << text;
    ASSERT_EQ(::chown(path.c_str(), kNobody, kNobody), 0);
    fs::permissions(path, fs::perms(0600));
  }
  fs::path dir_;
  fs::path dst_;
};

TEST_F(NodeClaimTest, StagedOnlyForTheSameJobAndWhileTheFileIsThere) {
  {
    NodeClaim claim(dst_, 1s);
    EXPECT_EQ(claim.state("12", "12.0"), NodeState::kNothing);
    place_copy_with_record();
    claim.record_staged("12");
  }
  NodeClaim again(dst_, 1s);
  EXPECT_EQ(again.state("12", "12.1"), NodeState::kStaged);
  EXPECT_EQ(again.state("13", "13.0"), NodeState::kNothing);
  fs::remove(dst_);
  EXPECT_EQ(again.state("12", "12.1"), NodeState::kNothing);
}

TEST_F(NodeClaimTest, StagedNeedsOurCacheRecordForTheFile) {
  NodeClaim claim(dst_, 1s);
  claim.record_staged("12");
  std::ofstream(dst_) << "attacker";  // any regular file, without a record
  EXPECT_EQ(claim.state("12", "12.0"), NodeState::kNothing);
  place_copy_with_record();
  EXPECT_EQ(claim.state("12", "12.0"), NodeState::kStaged);
  ASSERT_EQ(::chown(dst_.c_str(), kNobody, kNobody), 0);  // a copy that is not ours
  EXPECT_EQ(claim.state("12", "12.0"), NodeState::kNothing);
}

TEST_F(NodeClaimTest, AStateFileAnotherUserPlantedIsRefused) {
  fs::permissions(dir_, fs::perms(01777));
  place_copy_with_record();
  NodeClaim claim(dst_, 1s);
  plant(state_file(), "staged 12\n");
  EXPECT_THROW(claim.state("12", "12.0"), replicator::SecurityError);
  fs::remove(state_file());
  std::ofstream(state_file()) << "staged 12\n";  // ours, but others may read it
  fs::permissions(state_file(), fs::perms(0644));
  EXPECT_THROW(claim.state("12", "12.0"), replicator::SecurityError);
}

TEST_F(NodeClaimTest, AStateFileSymlinkIsRefusedAndNeverWrittenThrough) {
  std::ofstream(dir_ / "victim") << "precious";
  fs::create_symlink(dir_ / "victim", state_file());
  NodeClaim claim(dst_, 1s);
  EXPECT_THROW(claim.state("12", "12.0"), replicator::SecurityError);
  claim.record_failed("12", "12.0");  // replaces the link
  std::ifstream in(dir_ / "victim");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "precious");
  EXPECT_FALSE(fs::is_symlink(state_file()));
  EXPECT_EQ(fs::status(state_file()).permissions(), fs::perms(0600));
  EXPECT_EQ(claim.state("12", "12.0"), NodeState::kFailed);
}

TEST_F(NodeClaimTest, ALockAnotherUserHoldsFailsAtOnce) {
  fs::permissions(dir_, fs::perms(01777));
  plant(lock_file(), "");
  // Held by another process for longer than our timeout: we must not wait for it.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t holder = ::fork();
  if (holder == 0) {
    const int fd = ::open(lock_file().c_str(), O_RDWR);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0)
      ::_exit(1);
    (void)::write(ready[1], "x", 1);
    ::sleep(10);
    ::_exit(0);
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  const auto started = std::chrono::steady_clock::now();
  try {
    NodeClaim claim(dst_, 3s);
    ADD_FAILURE() << "took a lock another user owns";
  } catch (const replicator::SecurityError& error) {
    EXPECT_NE(std::string(error.what()).find("belongs to uid 65534"), std::string::npos)
        << error.what();
  } catch (const std::exception& error) {
    ADD_FAILURE() << "not a refusal: " << error.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST_F(NodeClaimTest, ALockSymlinkOrAnOpenModeIsRefused) {
  fs::create_symlink(dir_ / "elsewhere", lock_file());
  EXPECT_THROW(NodeClaim(dst_, 1s), replicator::SecurityError);
  EXPECT_FALSE(fs::exists(dir_ / "elsewhere"));  // O_CREAT did not follow the link
  fs::remove(lock_file());
  std::ofstream(lock_file()).close();
  fs::permissions(lock_file(), fs::perms(0666));
  EXPECT_THROW(NodeClaim(dst_, 1s), replicator::SecurityError);
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
