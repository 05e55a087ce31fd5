// The root's one pass over the source tree: one fstatat(AT_SYMLINK_NOFOLLOW) per entry, one
// directory at a time (its names read, sorted bytewise, stat'ed, then its subdirectories in the
// same order), every step relative to the parent directory's fd. Open descriptors stay within
// the depth plus two, and depth is bounded by ManifestLimits::max_depth.
//
// Out come the manifest and, for each regular file in data order, what the stream reader needs
// to open it exactly once later (tree_stream.h), plus what it was when walked (size, mtime,
// ctime, inode), so a changed file is noticed at read time and an unchanged source is
// recognised for the cache without reading any contents (tree_source_key()).
//
// Hardlinks are found by (st_dev, st_ino): the first name is a file entry, later names are
// hardlink entries and are never read. Devices, sockets and FIFOs are left out and counted.
// A source named by the caller is followed if it is a symlink (so `env -> /lustre/envs/v3`
// works, like `cp -H`); nothing inside it is.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "replicator/tree/manifest.h"

namespace imgcast::replicator {

struct TreeSourceFile {
  std::uint32_t entry = 0;  // its kFile entry in the manifest
  std::uint32_t root = 0;   // index into WalkedTree::roots
  std::string relative;     // its path under that root; "" when the root is this file
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
};

struct WalkedTree {
  TreeManifest manifest;
  std::vector<std::filesystem::path> roots;  // the sources, as named
  std::vector<TreeSourceFile> files;         // one per kFile entry, in data order
  std::uint64_t skipped_special = 0;         // devices, sockets, FIFOs left out (warn once)
};

// The contents of directory `source` become the tree; its own mode and mtime become the top's.
// Throws InputError with a one-line reason: missing, not a directory, unreadable, over a limit,
// or changed while walked.
WalkedTree walk_directory(const std::filesystem::path& source, const ManifestLimits& limits = {});

// Each source becomes one top-level entry named by its last component (a file, or a directory
// with everything under it): `app.sif data/ env/` -> "app.sif", "data", "env". The top is the
// caller's (0755, now, this user). Throws InputError as walk_directory(), and for two sources with
// the same name or a source that is neither a file nor a directory.
WalkedTree walk_sources(const std::vector<std::filesystem::path>& sources,
                        const ManifestLimits& limits = {});

// 32 hex digits over the manifest and every file's inode, device and ctime: equal keys mean an
// unchanged source (the cache's question), with no file contents read.
std::string tree_source_key(const WalkedTree& tree);

}  // namespace imgcast::replicator
