// The sweep of abandoned staging directories: a tree whose builder is alive (its process holds
// the staging directory's lock) is never removed, one whose builder was SIGKILLed mid-build is,
// by the next StagedTree or StagedImage created beside it, without following anything out of it;
// and nothing with a staging name that is not a directory of ours is touched.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>

#include "replicator/image/staged_image.h"
#include "replicator/image/staging_sweep.h"
#include "replicator/tree/staged_tree.h"
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

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// A run building a tree in another process, stopped half-way: its StagedTree holds a file, a
// read-only subdirectory and a symlink out to `victim` (a sweep must unlink it, never follow
// it). A separate process because the lock must die with its holder, as a SIGKILLed run's does.
class Builder {
 public:
  Builder(const fs::path& destination, const std::string& job, const fs::path& victim) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
      return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[0]);
      build_and_wait(destination, job, victim, fds[1]);
    }
    ::close(fds[1]);
    char c = 0;
    while (::read(fds[0], &c, 1) == 1 && c != '\n')
      name_.push_back(c);
    ::close(fds[0]);
  }
  ~Builder() { kill(); }
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;

  // SIGKILL, as the OOM killer or a launcher would: nothing is cleaned up, only the lock goes.
  void kill() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // The staging directory's name, empty when the child could not build it.
  const std::string& staging_name() const { return name_; }

 private:
  [[noreturn]] static void build_and_wait(const fs::path& destination, const std::string& job,
                                          const fs::path& victim, int report) {
    try {
      StagedTree tree = StagedTree::create(destination, job);
      const int top = tree.staging_fd();
      if (::mkdirat(top, "sub", 0700) != 0)
        ::_exit(1);
      const UniqueFd sub(::openat(top, "sub", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      const UniqueFd file(::openat(sub.get(), "part", O_WRONLY | O_CREAT | O_EXCL, 0644));
      if (!file.valid() || ::write(file.get(), "half", 4) != 4)
        ::_exit(1);
      if (::symlinkat(victim.c_str(), top, "escape") != 0)
        ::_exit(1);
      if (::fchmod(sub.get(), 0500) != 0)
        ::_exit(1);
      const std::string line = tree.staging_name() + "\n";
      if (::write(report, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
        ::_exit(1);
      }
      ::close(report);
      for (;;)
        ::pause();  // alive, holding the lock, until killed
    } catch (...) {
      ::_exit(1);
    }
  }

  pid_t pid_ = -1;
  std::string name_;
};

TEST(StagingDirSweep, ALiveBuildersTreeIsKeptAndADeadOnesIsRemoved) {
  TempDir dir;
  TempDir outside;
  const fs::path victim = outside / "victim";
  std::ofstream(victim) << "keep me";

  Builder live(dir / "env", "live", victim);
  Builder dead(dir / "env", "dead", victim);
  ASSERT_EQ(live.staging_name(), ".env.imgcast-live.tmp");
  ASSERT_EQ(dead.staging_name(), ".env.imgcast-dead.tmp");
  ASSERT_TRUE(fs::is_directory(dir / dead.staging_name() / "sub"));

  const UniqueFd dir_fd = open_dir(dir.path());
  EXPECT_EQ(sweep_stale_staging(dir_fd.get(), dir.path().string()), 0);  // both alive
  dead.kill();
  EXPECT_EQ(sweep_stale_staging(dir_fd.get(), dir.path().string()), 1);
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{live.staging_name()});
  EXPECT_TRUE(fs::exists(dir / live.staging_name() / "sub" / "part"));
  EXPECT_EQ(read_file(victim), "keep me");

  // The next StagedTree beside it sweeps a builder that died since.
  live.kill();
  {
    StagedTree next = StagedTree::create(dir / "env", "next");
    EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{".env.imgcast-next.tmp"});
  }
  EXPECT_TRUE(list_dir(dir.path()).empty());

  // And so does a StagedImage: one sweep covers files and trees.
  Builder image_neighbour(dir / "env", "gone", victim);
  ASSERT_FALSE(image_neighbour.staging_name().empty());
  image_neighbour.kill();
  StagedImage image = StagedImage::create(dir / "app.sif", 16, "img");
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{".app.sif.imgcast-img.tmp"});
  EXPECT_EQ(read_file(victim), "keep me");
}

TEST(StagingDirSweep, AStagedTreeHoldsItsLockUntilItIsGone) {
  TempDir dir;
  StagedTree tree = StagedTree::create(dir / "env", "job");
  const UniqueFd other(
      ::open((dir / tree.staging_name()).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(other.valid());
  EXPECT_NE(::flock(other.get(), LOCK_EX | LOCK_NB), 0);
  EXPECT_EQ(errno, EWOULDBLOCK);
  // A second tree for the same destination takes another name and leaves the first alone.
  {
    StagedTree second = StagedTree::create(dir / "env", "job");
    EXPECT_NE(second.staging_name(), tree.staging_name());
    EXPECT_EQ(list_dir(dir.path()).size(), 2u);
  }
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{tree.staging_name()});
  tree.discard();
  EXPECT_TRUE(list_dir(dir.path()).empty());
}

TEST(StagingDirSweep, LeavesWhatIsNotAStagingDirectoryOfOurs) {
  TempDir dir;
  TempDir outside;
  // A symlink with the staging name, to a directory of ours: neither followed nor removed.
  fs::create_directory(outside / "data");
  std::ofstream(outside / "data" / "keep") << "keep me";
  fs::create_directory_symlink(outside / "data", dir / ".a.imgcast-j.tmp");
  // Directories of ours whose names are not staging names.
  fs::create_directory(dir / ".b.imgcast-j.old");
  fs::create_directory(dir / "c.imgcast-j.tmp");
  const UniqueFd dir_fd = open_dir(dir.path());
  EXPECT_EQ(sweep_stale_staging(dir_fd.get(), dir.path().string()), 0);
  EXPECT_EQ(list_dir(dir.path()).size(), 3u);
  EXPECT_EQ(read_file(outside / "data" / "keep"), "keep me");
  if (::geteuid() != 0) {
    GTEST_SKIP() << "another user's lookalike needs root to chown";
  }
  // Another user's abandoned-looking directory (no lock held) is not ours to remove.
  const fs::path theirs = dir / ".d.imgcast-j.tmp";
  fs::create_directory(theirs);
  std::ofstream(theirs / "file") << "theirs";
  ASSERT_EQ(::chown((theirs / "file").c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
  EXPECT_EQ(sweep_stale_staging(dir_fd.get(), dir.path().string()), 0);
  EXPECT_EQ(read_file(theirs / "file"), "theirs");
  // Nor does a StagedTree's own sweep touch any of them.
  { StagedTree tree = StagedTree::create(dir / "env", "j"); }
  EXPECT_EQ(list_dir(dir.path()).size(), 4u);
}

}  // namespace
}  // namespace imgcast::replicator
