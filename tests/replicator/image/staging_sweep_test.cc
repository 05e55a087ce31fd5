// The sweep of abandoned staging files: a file a live StagedImage holds is never removed, one
// whose owner is gone (its lock released) is, and nothing that is not ours is touched. Staging
// directories: tests/replicator/tree/staging_dir_sweep_test.cc.
#include "replicator/image/staging_sweep.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "replicator/image/staged_image.h"
#include "replicator/unique_fd.h"
#include "tests/support/process.h"

namespace imgcast::replicator {
namespace {

namespace fs = std::filesystem;
using test::list_dir;
using test::TempDir;

UniqueFd open_dir(const fs::path& dir) {
  return UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

// What a dead run leaves: a staging file nobody holds a lock on.
void abandon(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid()) << path;
  ASSERT_EQ(::flock(fd.get(), LOCK_EX), 0);
  ASSERT_EQ(::write(fd.get(), "partial", 7), 7);
}  // closing the descriptor releases the lock, as a SIGKILL does

TEST(StagingSweep, RecognisesOnlyStagingNames) {
  EXPECT_TRUE(is_staging_name(".app.sif.imgcast-job1.tmp"));
  EXPECT_TRUE(is_staging_name(".app.sif.imgcast-job1-3f2a.tmp"));
  EXPECT_FALSE(is_staging_name("app.sif"));
  EXPECT_FALSE(is_staging_name(".app.sif.imgcast-state"));
  EXPECT_FALSE(is_staging_name(".app.sif.imgcast-lock"));
  EXPECT_FALSE(is_staging_name("app.sif.imgcast-j.tmp"));
}

TEST(StagingSweep, ALiveStagedImageIsKeptAndAnAbandonedOneIsRemoved) {
  TempDir dir;
  abandon(dir / ".old.sif.imgcast-deadjob.tmp");
  StagedImage live = StagedImage::create(dir / "app.sif", 16, "live");
  // create() swept the abandoned file already; plant another one and sweep again.
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{".app.sif.imgcast-live.tmp"});
  abandon(dir / ".app.sif.imgcast-deadjob.tmp");
  const UniqueFd dir_fd = open_dir(dir.path());
  EXPECT_EQ(sweep_stale_staging(dir_fd.get(), dir.path().string()), 1);
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{".app.sif.imgcast-live.tmp"});
  // A second run into the same directory never removes the live one.
  {
    StagedImage other = StagedImage::create(dir / "app.sif", 16, "live");
    EXPECT_EQ(list_dir(dir.path()).size(), 2u);
  }
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{".app.sif.imgcast-live.tmp"});
  live.commit();
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"app.sif"});
}

TEST(StagingSweep, LeavesWhatIsNotAPlainStagingFileOfOurs) {
  TempDir dir;
  std::ofstream(dir / "victim") << "keep me";
  fs::create_symlink(dir / "victim", dir / ".a.sif.imgcast-j.tmp");  // a symlink: not followed
  // Neither a file nor a directory (a FIFO is not waited on either).
  ASSERT_EQ(::mkfifo((dir / ".b.sif.imgcast-j.tmp").c_str(), 0600), 0);
  std::ofstream(dir / "c.sif") << "a copy";  // not a staging name
  const UniqueFd dir_fd = open_dir(dir.path());
  EXPECT_EQ(sweep_stale_staging(dir_fd.get(), dir.path().string()), 0);
  EXPECT_EQ(list_dir(dir.path()).size(), 4u);
  if (::geteuid() == 0) {
    // Another user's abandoned file is not ours to remove.
    abandon(dir / ".d.sif.imgcast-j.tmp");
    ASSERT_EQ(::chown((dir / ".d.sif.imgcast-j.tmp").c_str(), 65534, 65534), 0);
    EXPECT_EQ(sweep_stale_staging(dir_fd.get(), dir.path().string()), 0);
    EXPECT_TRUE(fs::exists(dir / ".d.sif.imgcast-j.tmp"));
  }
}

}  // namespace
}  // namespace imgcast::replicator
