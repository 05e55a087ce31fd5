#include "cli/launch/rendezvous.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "replicator/errors.h"

namespace imgcast::cli::launch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class RendezvousTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("imgcast-rdv-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(RendezvousTest, PublishedInvitationIsReadBackPrivately) {
  Rendezvous node0(dir_, "12.3:/tmp/app.sif");
  node0.publish({"node1:40123", "IMGCAST1 secret\n"});
  struct stat st {};
  ASSERT_EQ(::stat(node0.file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const Invitation got = Rendezvous(dir_, "12.3:/tmp/app.sif").wait(1s);
  EXPECT_EQ(got.control_address, "node1:40123");
  EXPECT_EQ(got.secret_line, "IMGCAST1 secret");
  node0.withdraw();
  EXPECT_FALSE(fs::exists(node0.file()));
}

TEST_F(RendezvousTest, KeysThatDifferNeverShareAFile) {
  EXPECT_NE(Rendezvous(dir_, "12.3:/tmp/a").file(), Rendezvous(dir_, "12.4:/tmp/a").file());
  EXPECT_NE(Rendezvous(dir_, "12.3:/tmp/a").file(), Rendezvous(dir_, "12.3:/tmp/b").file());
  // Whatever the key holds, the file stays in the directory.
  EXPECT_EQ(Rendezvous(dir_, "../../etc/x:/a/../b").file().parent_path(), dir_);
}

TEST_F(RendezvousTest, WaiterSeesALatePublisher) {
  Rendezvous node0(dir_, "k");
  std::thread late([&] {
    std::this_thread::sleep_for(150ms);
    node0.publish({"h:1", "s"});
  });
  EXPECT_EQ(Rendezvous(dir_, "k").wait(5s).control_address, "h:1");
  late.join();
}

TEST_F(RendezvousTest, TimesOutNamingTheFileAndDirectory) {
  try {
    Rendezvous(dir_, "never").wait(100ms);
    FAIL();
  } catch (const replicator::TransferError& error) {
    EXPECT_NE(std::string(error.what()).find(dir_.string()), std::string::npos);
  }
}

TEST_F(RendezvousTest, FailureIsHeardAtOnce) {
  Rendezvous(dir_, "k").publish_failure("source /x does not exist\nsecond line");
  try {
    Rendezvous(dir_, "k").wait(5s);
    FAIL();
  } catch (const replicator::TransferError& error) {
    EXPECT_EQ(std::string(error.what()),
              "node 0 failed before the transfer: source /x does not exist second line");
  }
}

TEST_F(RendezvousTest, RefusesAFileOthersCanRead) {
  Rendezvous node0(dir_, "k");
  node0.publish({"h:1", "s"});
  ::chmod(node0.file().c_str(), 0644);
  EXPECT_THROW(Rendezvous(dir_, "k").wait(1s), replicator::SecurityError);
}

TEST_F(RendezvousTest, RefusesAFileOfAnotherUser) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root to give the file to another user";
  Rendezvous node0(dir_, "k");
  node0.publish({"h:1", "s"});
  ASSERT_EQ(::chown(node0.file().c_str(), 65534, 65534), 0);
  EXPECT_THROW(Rendezvous(dir_, "k").wait(1s), replicator::SecurityError);
}

TEST_F(RendezvousTest, RefusesASymlink) {
  Rendezvous node0(dir_, "k");
  fs::create_symlink("/etc/passwd", node0.file());
  EXPECT_THROW(Rendezvous(dir_, "k").wait(1s), replicator::ImgcastError);
}

TEST_F(RendezvousTest, MalformedFileIsAnInputError) {
  Rendezvous node0(dir_, "k");
  {
    std::ofstream(node0.file()) << "not a rendezvous\n";
  }
  ::chmod(node0.file().c_str(), 0600);
  EXPECT_THROW(Rendezvous(dir_, "k").wait(1s), replicator::InputError);
}

TEST_F(RendezvousTest, UnwritableDirectoryIsAnInputError) {
  EXPECT_THROW(Rendezvous(dir_ / "missing", "k").publish({"h:1", "s"}), replicator::InputError);
}

}  // namespace
}  // namespace imgcast::cli::launch
