// StagedImage on real files: placement by rename, cleanup without commit, and every way a
// destination can be wrong.
#include "replicator/image/staged_image.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>

#include "replicator/errors.h"
#include "replicator/unique_fd.h"
#include "tests/replicator/image/resident.h"
#include "tests/replicator/image/small_mount.h"
#include "tests/support/process.h"

namespace imgcast::replicator {
namespace {

namespace fs = std::filesystem;
using test::list_dir;
using test::TempDir;

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode;
}

void expect_input_error(const fs::path& destination, const std::string& words) {
  try {
    (void)StagedImage::create(destination, 10, "j");
    ADD_FAILURE() << destination << " accepted";
  } catch (const InputError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find(words), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(StagedImage, NothingUnderTheFinalNameUntilCommit) {
  TempDir dir;
  const fs::path dst = dir / "app.sif";
  {
    StagedImage image = StagedImage::create(dst, 5000, "job1");
    EXPECT_EQ(image.destination(), dst);
    EXPECT_FALSE(image.committed());
    EXPECT_FALSE(fs::exists(dst));
    ASSERT_EQ(list_dir(dir.path()).size(), 1u);
    EXPECT_EQ(list_dir(dir.path())[0], ".app.sif.imgcast-job1.tmp");
    ASSERT_EQ(image.bytes().size(), 5000u);
    std::memset(image.bytes().data(), 'x', 5000);
    EXPECT_FALSE(fs::exists(dst));
    image.commit();
    EXPECT_TRUE(image.committed());
    EXPECT_TRUE(fs::exists(dst));
    EXPECT_EQ(image.bytes().size(), 5000u);  // the mapping outlives commit()
    EXPECT_EQ(static_cast<char>(image.bytes()[4999]), 'x');
  }
  EXPECT_EQ(read_all(dst), std::string(5000, 'x'));
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"app.sif"});
  EXPECT_TRUE(S_ISREG(mode_of(dst)));
  EXPECT_EQ(mode_of(dst) & 07777, 0644u);
}

TEST(StagedImage, CustomModeAndEmptyImage) {
  TempDir dir;
  StagedImage image = StagedImage::create(dir / "empty", 0, "j", 0600);
  EXPECT_TRUE(image.bytes().empty());
  image.commit();
  struct stat st {};
  ASSERT_EQ(::stat((dir / "empty").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  StagedImage exec = StagedImage::create(dir / "tool", 1, "j", 0755);
  exec.commit();
  EXPECT_EQ(mode_of(dir / "tool") & 07777, 0755u);  // not narrowed by the umask
}

TEST(StagedImage, CommitReplacesAnExistingFile) {
  TempDir dir;
  std::ofstream(dir / "app.sif") << "old contents, longer than the new";
  StagedImage image = StagedImage::create(dir / "app.sif", 3, "j");
  EXPECT_EQ(read_all(dir / "app.sif"), "old contents, longer than the new");
  std::memcpy(image.bytes().data(), "new", 3);
  image.commit();
  EXPECT_EQ(read_all(dir / "app.sif"), "new");
}

TEST(StagedImage, WithoutCommitTheTemporaryFileIsRemoved) {
  TempDir dir;
  {
    StagedImage image = StagedImage::create(dir / "app.sif", 4096, "j");
    StagedImage moved = std::move(image);  // the moved-from one must not remove anything
    EXPECT_TRUE(image.bytes().empty());
    EXPECT_EQ(list_dir(dir.path()).size(), 1u);
  }
  EXPECT_TRUE(list_dir(dir.path()).empty());
}

TEST(StagedImage, AMovedImageCommits) {
  TempDir dir;
  StagedImage image = StagedImage::create(dir / "app.sif", 2, "j");
  std::vector<StagedImage> holder;
  holder.push_back(std::move(image));
  std::memcpy(holder[0].bytes().data(), "ok", 2);
  holder[0].commit();
  holder.clear();
  EXPECT_EQ(read_all(dir / "app.sif"), "ok");
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"app.sif"});
}

TEST(StagedImage, ReleasedPageTablesKeepEveryByte) {
  // What the root does once every node is done: the entries go, the placed copy and the mapping
  // stay (a late reader faults the same bytes back in).
  TempDir dir;
  constexpr std::size_t kBytes = std::size_t{4} << 20;
  StagedImage image = StagedImage::create(dir / "app.sif", kBytes, "j");
  for (std::size_t i = 0; i < kBytes; ++i) {
    image.bytes()[i] = static_cast<std::byte>(i * 7 + i / 4096);
  }
  image.commit();
  ASSERT_GE(resident_kib(image.bytes().data()), static_cast<long>(kBytes / 1024));
  image.release_page_tables();
  EXPECT_EQ(resident_kib(image.bytes().data()), 0);
  const std::string placed = read_all(dir / "app.sif");
  ASSERT_EQ(placed.size(), kBytes);
  for (std::size_t i = 0; i < kBytes; ++i) {
    ASSERT_EQ(image.bytes()[i], static_cast<std::byte>(i * 7 + i / 4096)) << "mapping, byte " << i;
    ASSERT_EQ(static_cast<std::byte>(placed[i]), image.bytes()[i]) << "file, byte " << i;
  }
}

TEST(StagedImage, DiscardRemovesAtOnceAndCommitThenFails) {
  TempDir dir;
  StagedImage image = StagedImage::create(dir / "app.sif", 10, "j");
  image.discard();
  EXPECT_TRUE(list_dir(dir.path()).empty());
  image.discard();  // idempotent
  EXPECT_THROW(image.commit(), TransferError);
  EXPECT_FALSE(fs::exists(dir / "app.sif"));
}

TEST(StagedImage, DiscardAfterCommitKeepsTheFile) {
  TempDir dir;
  StagedImage image = StagedImage::create(dir / "app.sif", 10, "j");
  image.commit();
  image.discard();
  EXPECT_THROW(image.commit(), TransferError);  // placed once only
  EXPECT_TRUE(fs::exists(dir / "app.sif"));
}

TEST(StagedImage, ASymlinkAtTheDestinationIsReplacedNotFollowed) {
  TempDir dir;
  fs::create_directories(dir / "elsewhere");
  std::ofstream(dir / "elsewhere" / "victim") << "keep me";
  fs::create_symlink(dir / "elsewhere" / "victim", dir / "app.sif");
  StagedImage image = StagedImage::create(dir / "app.sif", 3, "j");
  std::memcpy(image.bytes().data(), "new", 3);
  image.commit();
  EXPECT_FALSE(fs::is_symlink(dir / "app.sif"));
  EXPECT_TRUE(S_ISREG(mode_of(dir / "app.sif")));
  EXPECT_EQ(read_all(dir / "app.sif"), "new");
  EXPECT_EQ(read_all(dir / "elsewhere" / "victim"), "keep me");
}

TEST(StagedImage, ASymlinkToADirectoryAtTheDestinationIsReplaced) {
  TempDir dir;
  fs::create_directories(dir / "target");
  fs::create_directory_symlink(dir / "target", dir / "app.sif");
  StagedImage image = StagedImage::create(dir / "app.sif", 1, "j");
  image.commit();
  EXPECT_TRUE(S_ISREG(mode_of(dir / "app.sif")));
  EXPECT_TRUE(list_dir(dir / "target").empty());
}

TEST(StagedImage, ALiveRunsTemporaryFileDoesNotBlock) {
  TempDir dir;
  std::ofstream(dir / ".app.sif.imgcast-j.tmp") << "stale";
  // Locked as a live run holds it: not swept (an unlocked one is: staging_sweep_test.cc).
  const transport::UniqueFd held(
      ::open((dir / ".app.sif.imgcast-j.tmp").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_EQ(::flock(held.get(), LOCK_EX), 0);
  StagedImage image = StagedImage::create(dir / "app.sif", 10, "j");
  EXPECT_EQ(list_dir(dir.path()).size(), 2u);
  image.commit();
  EXPECT_EQ(read_all(dir / "app.sif"), std::string(10, '\0'));
  EXPECT_EQ(read_all(dir / ".app.sif.imgcast-j.tmp"), "stale");  // not ours: left alone
}

TEST(StagedImage, ASymlinkPlantedAtTheTemporaryNameIsNotFollowed) {
  TempDir dir;
  std::ofstream(dir / "victim") << "keep me";
  fs::create_symlink(dir / "victim", dir / ".app.sif.imgcast-j.tmp");
  {
    StagedImage image = StagedImage::create(dir / "app.sif", 7, "j");
    std::memcpy(image.bytes().data(), "written", 7);
  }
  EXPECT_EQ(read_all(dir / "victim"), "keep me");
  EXPECT_TRUE(fs::is_symlink(dir / ".app.sif.imgcast-j.tmp"));
  EXPECT_EQ(list_dir(dir.path()), (std::vector<std::string>{".app.sif.imgcast-j.tmp", "victim"}));
}

TEST(StagedImage, UnsafeTagCharactersAreReplaced) {
  TempDir dir;
  StagedImage image = StagedImage::create(dir / "app.sif", 1, "../x y");
  ASSERT_EQ(list_dir(dir.path()).size(), 1u);
  EXPECT_EQ(list_dir(dir.path())[0], ".app.sif.imgcast-___x_y.tmp");
}

TEST(StagedImage, ARelativeNameIsPlacedInTheWorkingDirectory) {
  TempDir dir;
  const fs::path before = fs::current_path();
  fs::current_path(dir.path());
  {
    StagedImage image = StagedImage::create("here.sif", 4, "j");
    std::memcpy(image.bytes().data(), "here", 4);
    image.commit();
  }
  fs::current_path(before);
  EXPECT_EQ(read_all(dir / "here.sif"), "here");
}

TEST(StagedImage, BadDestinationsAreInputErrors) {
  TempDir dir;
  fs::create_directories(dir / "sub");
  std::ofstream(dir / "file") << "x";
  expect_input_error(dir / "missing" / "app.sif", "does not exist: create it first");
  expect_input_error(dir / "sub", "is a directory: name the file to create");
  expect_input_error(dir.path() / "", "does not name a file");  // trailing '/'
  expect_input_error(dir / "sub" / ".", "does not name a file");
  expect_input_error(dir / "sub" / "..", "does not name a file");
  expect_input_error(dir / "file" / "app.sif", "not a directory");
  expect_input_error(dir / std::string(250, 'n'), "too long");
  EXPECT_EQ(list_dir(dir.path()), (std::vector<std::string>{"file", "sub"}));
  EXPECT_TRUE(list_dir(dir / "sub").empty());
}

TEST(StagedImage, AReadOnlyDirectoryIsAnInputError) {
  TempDir dir;
  // Root ignores permission bits; a read-only mount refuses even root (EROFS).
  SmallMount ro(dir / "ro", "size=1m,mode=0755");
  if (!ro.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << ro.error();
  }
  ASSERT_EQ(::mount(nullptr, (dir / "ro").c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr), 0)
      << std::strerror(errno);
  expect_input_error(dir / "ro" / "app.sif", "is not writable");
}

TEST(StagedImage, AFullFilesystemFailsBeforeAnyDataMoves) {
  TempDir dir;
  const fs::path small = dir / "small";
  SmallMount mount(small, "size=1m");
  if (!mount.mounted()) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << mount.error();
  }
  try {
    (void)StagedImage::create(small / "app.sif", 8 << 20, "j");
    ADD_FAILURE() << "8 MiB fit in a 1 MiB filesystem";
  } catch (const TransferError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("no space for 8388608 bytes in " + small.string()), std::string::npos)
        << what;
  }
  EXPECT_TRUE(list_dir(small).empty());
  // What fits still works there.
  StagedImage fits = StagedImage::create(small / "app.sif", 512 << 10, "j");
  fits.commit();
  EXPECT_EQ(fs::file_size(small / "app.sif"), 512u << 10);
}

TEST(StagedImage, InMemoryScratchHasNoNameAndIsNeverPlaced) {
  TempDir dir;
  StagedImage scratch = StagedImage::create_in_memory(dir / "env", 1 << 20);
  ASSERT_EQ(scratch.bytes().size(), 1u << 20);
  scratch.bytes()[0] = std::byte{7};
  scratch.bytes()[(1 << 20) - 1] = std::byte{9};
  EXPECT_EQ(scratch.bytes()[0], std::byte{7});
  EXPECT_TRUE(scratch.in_memory());
  EXPECT_EQ(scratch.where(), "memory");
  EXPECT_TRUE(list_dir(dir.path()).empty()) << "scratch memory made a file";
  EXPECT_THROW(scratch.commit(), std::logic_error);
  scratch.discard();  // nothing to remove
  EXPECT_FALSE(fs::exists(dir / "env"));
}

TEST(StagedImage, InMemoryScratchLargerThanTheMemoryFailsBeforeAnyDataMoves) {
  TempDir dir;
  try {
    (void)StagedImage::create_in_memory(dir / "env", std::uint64_t{1} << 60);
    ADD_FAILURE() << "an exabyte fit in memory";
  } catch (const TransferError& error) {
    EXPECT_NE(std::string(error.what()).find("no memory for 1152921504606846976 bytes"),
              std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace imgcast::replicator
