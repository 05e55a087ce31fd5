// The root's walk on real trees: every entry kind, deterministic order, hardlinks found by
// inode, FIFOs skipped and counted, several sources, and every refusal.
#include "replicator/tree/tree_walk.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>

#include "replicator/errors.h"
#include "tests/replicator/tree/tree_fixture.h"
#include "tests/support/process.h"

namespace imgcast::replicator {
namespace {

using test::TempDir;
using namespace test_tree;

const TreeEntry& find(const WalkedTree& tree, const std::string& path) {
  const auto& entries = tree.manifest.entries;
  const auto it = std::find_if(entries.begin(), entries.end(),
                               [&](const TreeEntry& e) { return e.path == path; });
  if (it == entries.end()) throw std::runtime_error("no entry " + path);
  return *it;
}

TEST(TreeWalk, SeesEveryKindOfEntry) {
  TempDir dir;
  make_sample_tree(dir / "src");
  const WalkedTree tree = walk_directory(dir / "src");
  EXPECT_TRUE(validate_manifest(tree.manifest).empty()) << validate_manifest(tree.manifest);
  EXPECT_EQ(tree.skipped_special, 1u);  // the FIFO
  EXPECT_EQ(find(tree, "bin").type, TreeEntryType::kDirectory);
  EXPECT_EQ(find(tree, "empty").type, TreeEntryType::kDirectory);
  const TreeEntry& tool = find(tree, "bin/tool");
  EXPECT_EQ(tool.type, TreeEntryType::kFile);
  EXPECT_EQ(tool.size, 300'000u);
  EXPECT_EQ(tool.mode, 0751u);
  EXPECT_EQ(tool.mtime_ns, 1'600'000'000'123'456'789);
  EXPECT_EQ(find(tree, "bin/rel").target, "tool");
  EXPECT_EQ(find(tree, "bin/abs").target, "/etc/hostname");
  EXPECT_EQ(find(tree, "lib/dangling").target, "../nowhere/at/all");
  const TreeEntry& link = find(tree, "lib/tool-link");
  EXPECT_EQ(link.type, TreeEntryType::kHardlink);
  EXPECT_EQ(tree.manifest.entries[link.link_to].path, "bin/tool");
  EXPECT_EQ(find(tree, std::string("odd\nname\xff")).size, 9u);
  EXPECT_EQ(find(tree, "readonly").mode, 0555u);
  EXPECT_THROW((void)find(tree, "lib/fifo"), std::runtime_error);
  // One source file per file entry, in data order, with what the walk saw.
  std::uint64_t data = 0;
  for (const TreeSourceFile& file : tree.files) {
    const TreeEntry& entry = tree.manifest.entries[file.entry];
    EXPECT_EQ(entry.type, TreeEntryType::kFile);
    EXPECT_EQ(entry.path, file.relative);
    EXPECT_EQ(entry.offset, data);
    EXPECT_EQ(entry.size, file.size);
    data += file.size;
  }
  EXPECT_EQ(data, tree.manifest.data_bytes);
  EXPECT_EQ(tree.files.size(), 5u);  // tool, mod.py, empty.txt, inside, odd name
}

TEST(TreeWalk, OrderIsBytewiseAndDirectoryByDirectory) {
  TempDir dir;
  fs::create_directories(dir / "src/b/inner");
  fs::create_directories(dir / "src/a");
  write_text(dir / "src/Z", "");
  write_text(dir / "src/b/x", "");
  write_text(dir / "src/a/y", "");
  write_text(dir / "src/\xff", "");
  std::vector<std::string> paths;
  for (const auto& e : walk_directory(dir / "src").manifest.entries) paths.push_back(e.path);
  // A directory's entries together, then its subdirectories in the same order.
  EXPECT_EQ(paths, (std::vector<std::string>{"Z", "a", "b", "\xff", "a/y", "b/inner", "b/x"}));
}

TEST(TreeWalk, SeveralSourcesBecomeTopLevelNames) {
  TempDir dir;
  test::write_random_file(dir / "app.sif", 1000);
  make_sample_tree(dir / "data");
  fs::create_directories(dir / "env");
  fs::create_symlink(dir / "env", dir / "env-link");  // a named source is followed
  const WalkedTree tree = walk_sources({dir / "app.sif", dir.path() / "data/", dir / "env-link"});
  EXPECT_TRUE(validate_manifest(tree.manifest).empty()) << validate_manifest(tree.manifest);
  EXPECT_EQ(tree.manifest.entries[0].path, "app.sif");
  EXPECT_EQ(tree.manifest.entries[0].type, TreeEntryType::kFile);
  EXPECT_EQ(find(tree, "data").type, TreeEntryType::kDirectory);
  EXPECT_EQ(find(tree, "data/bin/tool").type, TreeEntryType::kFile);
  EXPECT_EQ(find(tree, "env-link").type, TreeEntryType::kDirectory);
  ASSERT_EQ(tree.roots.size(), 3u);
  EXPECT_EQ(tree.files[0].relative, "");
  EXPECT_EQ(tree.files[0].root, 0u);
  EXPECT_EQ(tree.files[1].root, 1u);
  EXPECT_EQ(tree.files[1].relative, "odd\nname\xff");  // data/'s own entries come first
}

TEST(TreeWalk, Refusals) {
  TempDir dir;
  make_sample_tree(dir / "src");
  test::write_random_file(dir / "file", 10);
  fs::create_directories(dir / "other/src");
  EXPECT_THROW((void)walk_directory(dir / "missing"), InputError);
  EXPECT_THROW((void)walk_directory(dir / "file"), InputError);
  EXPECT_THROW((void)walk_sources({dir / "src", dir / "other/src"}), InputError);  // same name
  EXPECT_THROW((void)walk_sources({dir / "src/lib/fifo"}), InputError);
  EXPECT_THROW((void)walk_directory(dir / "src", {.max_entries = 5}), InputError);
  EXPECT_THROW((void)walk_directory(dir / "src", {.max_path_bytes = 8}), InputError);
  EXPECT_THROW((void)walk_directory(dir / "src", {.max_target_bytes = 5}), InputError);
  EXPECT_THROW((void)walk_directory(dir / "src", {.max_depth = 2}), InputError);
  EXPECT_THROW((void)walk_directory(dir / "src", {.max_data_bytes = 1000}), InputError);
  EXPECT_NO_THROW((void)walk_directory(dir / "src", {.max_depth = 4}));
}

TEST(TreeWalk, SourceKeyNoticesAChangedFileWithoutReadingIt) {
  TempDir dir;
  make_sample_tree(dir / "src");
  const std::string key = tree_source_key(walk_directory(dir / "src"));
  EXPECT_EQ(key.size(), 32u);
  EXPECT_EQ(tree_source_key(walk_directory(dir / "src")), key);
  // Same size, mtime put back: only the ctime (and so the key) tells.
  write_text(dir / "src/lib/python/site/mod.py", "print('ho')\n");
  set_mtime(dir / "src/lib/python/site/mod.py", 1'600'000'000);
  EXPECT_NE(tree_source_key(walk_directory(dir / "src")), key);
}

}  // namespace
}  // namespace imgcast::replicator
