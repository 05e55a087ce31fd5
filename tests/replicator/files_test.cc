// ImageSource and StagedImage on real files: reading chunks, placement by rename, and every
// way a destination can be wrong.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "replicator/errors.h"
#include "replicator/image_source.h"
#include "replicator/staged_image.h"
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

TEST(ImageSource, ReadsChunksIncludingTheLastPartialOne) {
  TempDir dir;
  test::write_random_file(dir / "img", 10000, 4);
  const std::string expected = read_all(dir / "img");
  const ImageSource source = ImageSource::open(dir / "img");
  ASSERT_EQ(source.size(), 10000u);
  const ChunkPlan plan(source.size(), 4096);
  std::string got(10000, '\0');
  for (std::uint32_t i = 0; i < plan.count(); ++i) {
    const Chunk c = plan.at(i);
    source.read(c, std::as_writable_bytes(std::span(got)).subspan(c.offset, c.length));
  }
  EXPECT_EQ(got, expected);
}

TEST(ImageSource, BadSourcesAreInputErrorsNamingThePath) {
  TempDir dir;
  test::write_random_file(dir / "file", 10);
  for (const auto& [path, words] :
       std::vector<std::pair<fs::path, std::string>>{{dir / "missing.sif", "does not exist"},
                                                     {dir.path(), "is a directory"},
                                                     {dir / "file" / "child", "not a directory"},
                                                     {"/dev/null", "not a regular file"}}) {
    try {
      (void)ImageSource::open(path);
      ADD_FAILURE() << path << " opened";
    } catch (const InputError& error) {
      EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find(words), std::string::npos) << error.what();
    }
  }
}

TEST(ImageSource, ASourceThatShrinksIsATransferError) {
  TempDir dir;
  test::write_random_file(dir / "img", 8192);
  const ImageSource source = ImageSource::open(dir / "img");
  ASSERT_EQ(::truncate((dir / "img").c_str(), 5000), 0);
  std::vector<std::byte> into(4096);
  EXPECT_THROW(source.read(ChunkPlan(8192, 4096).at(1), into), TransferError);
}

TEST(StagedImage, NothingUnderTheFinalNameUntilCommit) {
  TempDir dir;
  const fs::path dst = dir / "app.sif";
  {
    StagedImage image = StagedImage::create(dst, 5000, "job1");
    EXPECT_FALSE(fs::exists(dst));
    ASSERT_EQ(list_dir(dir.path()).size(), 1u);
    EXPECT_NE(list_dir(dir.path())[0].find("imgcast-job1"), std::string::npos);
    std::memset(image.bytes().data(), 'x', 5000);
    image.commit();
    EXPECT_TRUE(fs::exists(dst));
  }
  EXPECT_EQ(read_all(dst), std::string(5000, 'x'));
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"app.sif"});
  struct stat st {};
  ASSERT_EQ(::stat(dst.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
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
}

TEST(StagedImage, WithoutCommitTheTemporaryFileIsRemoved) {
  TempDir dir;
  {
    StagedImage image = StagedImage::create(dir / "app.sif", 4096, "j");
    StagedImage moved = std::move(image);  // the moved-from one must not remove anything
    EXPECT_EQ(list_dir(dir.path()).size(), 1u);
  }
  EXPECT_TRUE(list_dir(dir.path()).empty());
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
  EXPECT_EQ(read_all(dir / "app.sif"), "new");
  EXPECT_EQ(read_all(dir / "elsewhere" / "victim"), "keep me");
}

TEST(StagedImage, AStaleTemporaryFileDoesNotBlock) {
  TempDir dir;
  std::ofstream(dir / ".app.sif.imgcast-j.tmp") << "stale";
  StagedImage image = StagedImage::create(dir / "app.sif", 10, "j");
  image.commit();
  EXPECT_TRUE(fs::exists(dir / "app.sif"));
}

TEST(StagedImage, BadDestinationsAreInputErrors) {
  TempDir dir;
  fs::create_directories(dir / "sub");
  EXPECT_THROW(StagedImage::create(dir / "missing" / "app.sif", 10, "j"), InputError);
  EXPECT_THROW(StagedImage::create(dir / "sub", 10, "j"), InputError);      // a directory
  EXPECT_THROW(StagedImage::create(dir.path() / "", 10, "j"), InputError);  // no file name
  std::ofstream(dir / "file") << "x";
  EXPECT_THROW(StagedImage::create(dir / "file" / "app.sif", 10, "j"), InputError);
  EXPECT_EQ(list_dir(dir.path()), (std::vector<std::string>{"file", "sub"}));
}

TEST(StagedImage, AFullFilesystemFailsBeforeAnyDataMoves) {
  TempDir dir;
  const fs::path small = dir / "small";
  fs::create_directories(small);
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << std::strerror(errno);
  }
  try {
    (void)StagedImage::create(small / "app.sif", 8 << 20, "j");
    ADD_FAILURE() << "8 MiB fit in a 1 MiB filesystem";
  } catch (const TransferError& error) {
    EXPECT_NE(std::string(error.what()).find("no space"), std::string::npos) << error.what();
  }
  EXPECT_TRUE(list_dir(small).empty());
  ::umount(small.c_str());
}

}  // namespace
}  // namespace imgcast::replicator
