// Test support for trees: a real source tree with every kind of entry, and a comparison of two
// trees by type, content, mode, mtime, symlink text and hardlink identity.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "tests/support/process.h"

namespace imgcast::replicator::test_tree {

namespace fs = std::filesystem;

inline void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

inline void set_mtime(const fs::path& path, std::int64_t seconds) {
  const timespec times[2] = {{seconds, 123456789}, {seconds, 123456789}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

// Files, an empty directory, a read-only directory, relative/absolute/dangling symlinks, a
// hardlink pair, a FIFO, odd name bytes and a setgid directory under `root` (which must exist).
inline void make_sample_tree(const fs::path& root) {
  fs::create_directories(root / "bin");
  fs::create_directories(root / "lib/python/site");
  fs::create_directories(root / "empty");
  fs::create_directories(root / "readonly");
  test::write_random_file(root / "bin/tool", 300'000, 7);
  write_text(root / "lib/python/site/mod.py", "print('hi')\n");
  write_text(root / "lib/empty.txt", "");
  write_text(root / "readonly/inside", "kept");
  write_text(root / std::string("odd\nname\xff"), "odd bytes");
  ASSERT_EQ(::chmod((root / "bin/tool").c_str(), 0751), 0);
  ASSERT_EQ(::link((root / "bin/tool").c_str(), (root / "lib/tool-link").c_str()), 0);
  fs::create_symlink("tool", root / "bin/rel");
  fs::create_symlink("/etc/hostname", root / "bin/abs");
  fs::create_symlink("../nowhere/at/all", root / "lib/dangling");
  ASSERT_EQ(::mkfifo((root / "lib/fifo").c_str(), 0600), 0);
  for (const char* p : {"bin/tool", "lib/python/site/mod.py", "bin/rel", "lib/dangling", "empty",
                        "lib/python/site", "readonly/inside"}) {
    set_mtime(root / p, 1'600'000'000);
  }
  ASSERT_EQ(::chmod((root / "readonly").c_str(), 0555), 0);
  set_mtime(root / "readonly", 1'500'000'000);
}

// Everything under `root`, by relative path, as lstat saw it.
inline std::map<std::string, struct stat> stat_tree(const fs::path& root) {
  std::map<std::string, struct stat> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st {};
    EXPECT_EQ(::lstat(it->path().c_str(), &st), 0);
    // Not fs::relative(): it resolves symlinks, and the tree holds some that point outside.
    out[it->path().string().substr(root.string().size() + 1)] = st;
  }
  return out;
}

// `copy` is `source` entry by entry, minus FIFOs, sockets and devices. `keep_times`: mtimes of
// files, symlinks and directories compared to the nanosecond.
inline void expect_same_tree(const fs::path& source, const fs::path& copy) {
  auto want = stat_tree(source);
  std::erase_if(want, [](const auto& kv) {
    const mode_t m = kv.second.st_mode;
    return !S_ISDIR(m) && !S_ISREG(m) && !S_ISLNK(m);
  });
  const auto got = stat_tree(copy);
  ASSERT_EQ(want.size(), got.size());
  std::map<ino_t, ino_t> inode_of;  // source inode -> copy inode: hardlinks stay hardlinks
  for (const auto& [path, s] : want) {
    const auto found = got.find(path);
    ASSERT_NE(found, got.end()) << path << " missing";
    const struct stat& c = found->second;
    EXPECT_EQ(s.st_mode & S_IFMT, c.st_mode & S_IFMT) << path;
    if (!S_ISLNK(s.st_mode)) {
      EXPECT_EQ(s.st_mode & 07777, c.st_mode & 07777) << path;
    }
    EXPECT_EQ(s.st_mtim.tv_sec, c.st_mtim.tv_sec) << path;
    EXPECT_EQ(s.st_mtim.tv_nsec, c.st_mtim.tv_nsec) << path;
    if (S_ISREG(s.st_mode)) {
      EXPECT_EQ(read_text(source / path), read_text(copy / path)) << path;
      const auto [where, first] = inode_of.emplace(s.st_ino, c.st_ino);
      EXPECT_EQ(where->second, c.st_ino) << path << " should be a hardlink";
      EXPECT_EQ(s.st_nlink, c.st_nlink) << path;
    }
    if (S_ISLNK(s.st_mode)) {
      EXPECT_EQ(fs::read_symlink(source / path), fs::read_symlink(copy / path)) << path;
    }
  }
  struct stat s {}, c {};
  ASSERT_EQ(::stat(source.c_str(), &s), 0);
  ASSERT_EQ(::stat(copy.c_str(), &c), 0);
  EXPECT_EQ(s.st_mode & 07777, c.st_mode & 07777);
  EXPECT_EQ(s.st_mtim.tv_sec, c.st_mtim.tv_sec);
}

}  // namespace imgcast::replicator::test_tree
