// write_tree() on real directories: a walked tree comes back identical, and hostile manifests
// or data write nothing.
#include "replicator/tree/tree_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include "replicator/errors.h"
#include "replicator/tree/stream_layout.h"
#include "replicator/tree/tree_stream.h"
#include "replicator/unique_fd.h"
#include "tests/replicator/tree/tree_fixture.h"

namespace imgcast::replicator {
namespace {

using test::TempDir;
using namespace test_tree;

UniqueFd open_dir(const fs::path& path) {
  fs::create_directories(path);
  return UniqueFd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

std::vector<std::byte> stream_bytes(const TreeStream& stream) {
  std::vector<std::byte> out(stream.size());
  stream.read({.offset = 0, .length = static_cast<std::uint32_t>(out.size())}, out);
  return out;
}

TEST(TreeWriter, RebuildsAWalkedTreeExactly) {
  TempDir dir;
  make_sample_tree(dir / "src");
  const auto bytes = stream_bytes(TreeStream(walk_directory(dir / "src")));
  const ReceivedTree tree = parse_tree_stream(bytes);
  const UniqueFd out = open_dir(dir / "copy");
  const TreeCounts counts = write_tree(out.get(), tree.manifest, tree.data,
                                       {.flush = TreeWriteOptions::Flush::kNone});
  expect_same_tree(dir / "src", dir / "copy");
  EXPECT_EQ(counts.files, 5u);
  EXPECT_EQ(counts.hardlinks, 1u);
  EXPECT_EQ(counts.symlinks, 3u);
  EXPECT_EQ(counts.directories, 6u);
  EXPECT_EQ(counts.bytes, tree.manifest.data_bytes);
}

TEST(TreeWriter, WithoutOwnershipSetuidIsDropped) {
  TempDir dir;
  TreeManifest m;
  m.entries = {{.type = TreeEntryType::kFile, .path = "su", .mode = 06755, .uid = 4242}};
  const UniqueFd out = open_dir(dir / "copy");
  (void)write_tree(out.get(), m, {}, {.keep_owner = false, .flush = TreeWriteOptions::Flush::kNone});
  struct stat st {};
  ASSERT_EQ(::lstat((dir / "copy/su").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST(TreeWriter, KeepsOwnersWhenAsked) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root can give files away";
  TempDir dir;
  TreeManifest m;
  m.entries = {{.type = TreeEntryType::kDirectory, .path = "d", .uid = 4242, .gid = 4343},
               {.type = TreeEntryType::kFile, .path = "d/f", .mode = 04755, .uid = 4242},
               {.type = TreeEntryType::kSymlink, .path = "d/l", .uid = 4244, .target = "f"}};
  const UniqueFd out = open_dir(dir / "copy");
  (void)write_tree(out.get(), m, {}, {.keep_owner = true, .flush = TreeWriteOptions::Flush::kNone});
  struct stat st {};
  ASSERT_EQ(::lstat((dir / "copy/d/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4242u);
  EXPECT_EQ(st.st_mode & 07777, 04755u);  // fchmod after fchown keeps setuid
  ASSERT_EQ(::lstat((dir / "copy/d/l").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4244u);
  ASSERT_EQ(::lstat((dir / "copy/d").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 4343u);
}

// A file is created with its mode when the umask leaves it whole, and chowned only when its
// owners differ from what it gets by itself: neither shortcut may change what is placed.
TEST(TreeWriter, ModesAndOwnersSurviveTheUmaskAndASetgidDirectory) {
  TempDir dir;
  const mode_t old_umask = ::umask(022);
  TreeManifest m;
  const std::uint32_t uid = ::geteuid();
  const std::uint32_t gid = ::getegid();
  m.top = {.mode = 0755, .uid = uid, .gid = gid};
  m.entries = {{.type = TreeEntryType::kFile, .path = "shared", .mode = 0666, .uid = uid, .gid = gid},
               {.type = TreeEntryType::kFile, .path = "plain", .mode = 0644, .uid = uid, .gid = gid},
               {.type = TreeEntryType::kFile, .path = "none", .mode = 0, .uid = uid, .gid = gid}};
  const UniqueFd out = open_dir(dir / "copy");
  if (uid == 0) {
    // Under a setgid directory of another group a new file takes that group: ours is given back.
    ASSERT_EQ(::fchown(out.get(), 0, 4343), 0);
    ASSERT_EQ(::fchmod(out.get(), 02755), 0);
  }
  (void)write_tree(out.get(), m, {}, {.keep_owner = true, .flush = TreeWriteOptions::Flush::kNone});
  ::umask(old_umask);
  const std::pair<const char*, mode_t> expected[] = {{"shared", 0666}, {"plain", 0644}, {"none", 0}};
  for (const auto& [name, mode] : expected) {
    struct stat st {};
    ASSERT_EQ(::lstat((dir / "copy" / name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 07777, mode) << name;
    EXPECT_EQ(st.st_uid, uid) << name;
    EXPECT_EQ(st.st_gid, gid) << name;
  }
}

TEST(TreeWriter, RefusesHostileInputBeforeWritingAnything) {
  TempDir dir;
  const UniqueFd out = open_dir(dir / "copy");
  std::vector<TreeManifest> hostile(4);
  hostile[0].entries = {{.type = TreeEntryType::kDirectory, .path = "../escape"}};
  hostile[1].entries = {{.type = TreeEntryType::kSymlink, .path = "l", .target = "/tmp"},
                        {.type = TreeEntryType::kFile, .path = "l/owned"}};
  hostile[2].entries = {{.type = TreeEntryType::kFile, .path = "/etc/x"}};
  hostile[3].entries = {{.type = TreeEntryType::kFile, .path = "a", .size = 10}};
  hostile[3].data_bytes = 10;  // well-formed, but the data below is 3 bytes
  const std::byte three[3] = {};
  for (const TreeManifest& m : hostile) {
    EXPECT_THROW((void)write_tree(out.get(), m, three), SecurityError);
    EXPECT_TRUE(test::list_dir(dir / "copy").empty());
  }
  EXPECT_EQ(test::list_dir(dir.path()), std::vector<std::string>{"copy"});
}

TEST(TreeWriter, NeverWritesThroughSomethingAlreadyThere) {
  // The writer expects an empty directory; if one is not (a planted symlink), O_EXCL and
  // O_NOFOLLOW refuse rather than write through it.
  TempDir dir;
  fs::create_directories(dir / "victim");
  const UniqueFd out = open_dir(dir / "copy");
  fs::create_symlink(dir / "victim", dir / "copy/d");
  fs::create_symlink(dir / "victim/f", dir / "copy/f");
  TreeManifest m;
  m.entries = {{.type = TreeEntryType::kFile, .path = "f", .size = 1}};
  m.data_bytes = 1;
  const std::byte one[1] = {std::byte{'x'}};
  EXPECT_THROW((void)write_tree(out.get(), m, one), TransferError);
  m.entries = {{.type = TreeEntryType::kDirectory, .path = "d"},
               {.type = TreeEntryType::kFile, .path = "d/g", .size = 1, .offset = 0}};
  EXPECT_THROW((void)write_tree(out.get(), m, one), TransferError);
  EXPECT_TRUE(test::list_dir(dir / "victim").empty());
}

}  // namespace
}  // namespace imgcast::replicator
