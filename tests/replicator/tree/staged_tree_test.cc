// StagedTree on real directories: nothing at the destination until commit, atomic replacement
// of an earlier copy, cleanup on every failure, and a cleanup that never follows a symlink.
#include "replicator/tree/staged_tree.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>

#include "replicator/errors.h"
#include "replicator/tree/safe_remove.h"
#include "replicator/tree/stream_layout.h"
#include "replicator/tree/tree_stream.h"
#include "tests/replicator/tree/tree_fixture.h"

namespace imgcast::replicator {
namespace {

using test::list_dir;
using test::TempDir;
using namespace test_tree;
const TreeWriteOptions kNoFlush{.flush = TreeWriteOptions::Flush::kNone};

struct Received {
  std::vector<std::byte> bytes;
  ReceivedTree tree;
};
Received receive(const fs::path& source) {
  const TreeStream stream(walk_directory(source));
  Received out;
  out.bytes.resize(stream.size());
  stream.read({.offset = 0, .length = static_cast<std::uint32_t>(out.bytes.size())}, out.bytes);
  out.tree = parse_tree_stream(out.bytes);
  return out;
}

TEST(StagedTree, NothingAtTheDestinationUntilCommit) {
  TempDir dir;
  make_sample_tree(dir / "src");
  fs::create_directories(dir / "out");
  const Received got = receive(dir / "src");
  {
    StagedTree staged = StagedTree::create(dir / "out/env", "job1");
    EXPECT_EQ(list_dir(dir / "out"), std::vector<std::string>{".env.imgcast-job1.tmp"});
    staged.write(got.tree.manifest, got.tree.data, kNoFlush);
    EXPECT_FALSE(fs::exists(dir / "out/env"));
    staged.commit();
    EXPECT_TRUE(staged.committed());
  }
  EXPECT_EQ(list_dir(dir / "out"), std::vector<std::string>{"env"});
  expect_same_tree(dir / "src", dir / "out/env");
}

TEST(StagedTree, EmptyTreeAndTrailingSlash) {
  TempDir dir;
  fs::create_directories(dir / "src");
  const Received got = receive(dir / "src");
  StagedTree staged = StagedTree::create(dir.path() / "dst/", "j");
  staged.write(got.tree.manifest, got.tree.data, kNoFlush);
  staged.commit();
  EXPECT_TRUE(fs::is_directory(dir / "dst"));
  EXPECT_TRUE(list_dir(dir / "dst").empty());
}

TEST(StagedTree, AFailedWriteLeavesNothingBehind) {
  TempDir dir;
  TreeManifest m;
  m.entries = {{.type = TreeEntryType::kDirectory, .path = "d"},
               {.type = TreeEntryType::kFile, .path = "d/ok", .size = 2},
               {.type = TreeEntryType::kSymlink, .path = "out", .target = dir.path().string()},
               {.type = TreeEntryType::kFile, .path = std::string(300, 'n'), .offset = 2}};
  m.data_bytes = 2;
  const std::byte two[2] = {};
  const ManifestLimits long_names{.max_name_bytes = 1000};  // the filesystem refuses 300 bytes
  {
    StagedTree staged = StagedTree::create(dir / "dst", "j");
    EXPECT_THROW(staged.write(m, two, kNoFlush, long_names), TransferError);
  }
  EXPECT_TRUE(list_dir(dir.path()).empty());
}

// What a stop signal does mid-write (TreeWriteOptions::stop): the write ends at once and the
// staging tree goes, with nothing at the destination.
int g_stop_after = 0;
bool stop_after_a_few() noexcept { return --g_stop_after < 0; }

TEST(StagedTree, AStopMidWriteLeavesNothingBehind) {
  TempDir dir;
  make_sample_tree(dir / "src");
  const Received got = receive(dir / "src");
  for (const int entries : {0, 2}) {
    g_stop_after = entries;
    {
      StagedTree staged = StagedTree::create(dir / "dst", "j");
      TreeWriteOptions options = kNoFlush;
      options.stop = stop_after_a_few;
      EXPECT_THROW(staged.write(got.tree.manifest, got.tree.data, options), TransferError);
    }
    EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"src"}) << entries;
  }
}

TEST(StagedTree, DiscardRemovesReadOnlyDirectoriesAndNeverFollowsSymlinks) {
  TempDir dir;
  make_sample_tree(dir / "src");
  fs::create_directories(dir / "victim/deep");
  write_text(dir / "victim/deep/precious", "keep me");
  const Received got = receive(dir / "src");
  {
    StagedTree staged = StagedTree::create(dir / "dst", "j");
    staged.write(got.tree.manifest, got.tree.data, kNoFlush);
    // Planted after the write: a link to a directory outside, one to a file outside.
    ASSERT_EQ(::symlinkat((dir / "victim").c_str(), staged.staging_fd(), "planted"), 0);
    ASSERT_EQ(::symlinkat((dir / "victim/deep/precious").c_str(), staged.staging_fd(), "p2"), 0);
  }
  EXPECT_EQ(read_text(dir / "victim/deep/precious"), "keep me");
  EXPECT_EQ(list_dir(dir.path()), (std::vector<std::string>{"src", "victim"}));
}

TEST(StagedTree, ReplacesAnEarlierCopyAtomically) {
  TempDir dir;
  make_sample_tree(dir / "src");
  fs::create_directories(dir / "dst/old-only/inner");
  write_text(dir / "dst/old-only/inner/f", "old");
  ASSERT_EQ(::chmod((dir / "dst/old-only").c_str(), 0500), 0);
  const Received got = receive(dir / "src");
  {
    StagedTree staged = StagedTree::create(dir / "dst", "j");
    staged.write(got.tree.manifest, got.tree.data, kNoFlush);
    EXPECT_THROW(staged.commit(StagedTree::Existing::kRefuse), InputError);
    EXPECT_EQ(read_text(dir / "dst/old-only/inner/f"), "old");
  }
  EXPECT_EQ(list_dir(dir.path()), (std::vector<std::string>{"dst", "src"}));
  StagedTree staged = StagedTree::create(dir / "dst", "j");
  staged.write(got.tree.manifest, got.tree.data, kNoFlush);
  staged.commit(StagedTree::Existing::kReplace);
  expect_same_tree(dir / "src", dir / "dst");
  EXPECT_EQ(list_dir(dir.path()), (std::vector<std::string>{"dst", "src"}));
}

TEST(StagedTree, RefusesDestinationsInTheWay) {
  TempDir dir;
  fs::create_directories(dir / "src");
  fs::create_directories(dir / "real");
  fs::create_symlink(dir / "real", dir / "linked");
  write_text(dir / "file", "x");
  fs::create_symlink(dir / "real", dir / "dst-link");
  const Received got = receive(dir / "src");
  EXPECT_THROW((void)StagedTree::create(dir / "linked/dst", "j"), SecurityError);
  EXPECT_THROW((void)StagedTree::create(dir / "missing/dst", "j"), InputError);
  EXPECT_THROW((void)StagedTree::create(dir.path() / "..", "j"), InputError);
  for (const char* name : {"file", "dst-link"}) {
    StagedTree staged = StagedTree::create(dir / name, "j");
    staged.write(got.tree.manifest, got.tree.data, kNoFlush);
    EXPECT_THROW(staged.commit(StagedTree::Existing::kReplace), InputError) << name;
  }
  EXPECT_EQ(read_text(dir / "file"), "x");
  EXPECT_TRUE(fs::is_symlink(dir / "dst-link"));
  EXPECT_TRUE(list_dir(dir / "real").empty());
}

TEST(SafeRemove, RemovesOnlyTheTree) {
  TempDir dir;
  fs::create_directories(dir / "victim");
  write_text(dir / "victim/f", "keep");
  fs::create_directories(dir / "t/a/b");
  fs::create_symlink(dir / "victim", dir / "t/a/link");
  ASSERT_EQ(::chmod((dir / "t/a").c_str(), 0), 0);
  const UniqueFd top(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_TRUE(remove_tree_at(top.get(), "t"));
  EXPECT_TRUE(remove_tree_at(top.get(), "t"));  // missing counts as removed
  EXPECT_EQ(read_text(dir / "victim/f"), "keep");
  fs::create_symlink(dir / "victim", dir / "just-a-link");
  EXPECT_TRUE(remove_tree_at(top.get(), "just-a-link"));
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"victim"});
}

// Not run by ctest: how long the flush of ~20,000 small files takes each way on a disk.
// Run with --gtest_also_run_disabled_tests --gtest_filter='*FlushTiming*'.
TEST(StagedTree, DISABLED_FlushTimingOf20000SmallFiles) {
  TempDir dir("/var/tmp");
  TreeManifest m;
  for (int d = 0; d < 100; ++d) {
    m.entries.push_back({.type = TreeEntryType::kDirectory, .path = fmt::format("d{}", d)});
    for (int f = 0; f < 200; ++f) {
      const std::uint64_t size = (d * 200 + f) % 12'288;
      m.entries.push_back({.type = TreeEntryType::kFile, .path = fmt::format("d{}/f{}", d, f),
                           .size = size, .offset = m.data_bytes});
      m.data_bytes += size;
    }
  }
  const std::vector<std::byte> data(m.data_bytes, std::byte{'z'});
  for (const auto flush : {TreeWriteOptions::Flush::kNone, TreeWriteOptions::Flush::kSyncfs,
                           TreeWriteOptions::Flush::kPerFile}) {
    ::sync();
    const auto start = std::chrono::steady_clock::now();
    StagedTree staged = StagedTree::create(dir / "dst", "j");
    staged.write(m, data, {.flush = flush});
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::printf("flush %d: %.3f s for %zu files, %llu bytes\n", static_cast<int>(flush),
                took.count(), m.entries.size(), static_cast<unsigned long long>(m.data_bytes));
  }
}

}  // namespace
}  // namespace imgcast::replicator
