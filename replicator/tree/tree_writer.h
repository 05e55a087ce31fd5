// write_tree(): an agent builds a received tree inside an empty directory it created (the
// staging directory, staged_tree.h). Only names the manifest gives, and only below that
// directory: each entry is created relative to its parent directory's fd, and the directories on
// the way are opened O_NOFOLLOW|O_DIRECTORY one component at a time (never a multi-component
// path). Files are created O_EXCL|O_NOFOLLOW, so nothing that already exists is written through.
//
// Order: directories (mode 0700 while being filled), files and hardlinks in manifest order;
// then symlinks, so no later step can pass through one; then directory modes and mtimes,
// deepest first (creating entries would change a parent's mtime, and a read-only directory
// could not be filled); the top last.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <functional>
#include <span>

#include "replicator/tree/manifest.h"

namespace imgcast::replicator {

struct TreeWriteOptions {
  // Owners from the manifest (fchown/fchownat with AT_SYMLINK_NOFOLLOW): only root may give
  // files away. Without it every entry is the writer's, and setuid/setgid bits are dropped from
  // files, as `cp -p` does when it cannot keep the owner.
  bool keep_owner = ::geteuid() == 0;
  // How the bytes reach the disk before the tree is placed. kSyncfs: one syncfs() of the
  // staging directory's filesystem at the end, measured faster for many small files than
  // kPerFile (fsync of every file and directory); see docs/protocol.md. kNone: tmpfs, tests.
  enum class Flush { kNone, kSyncfs, kPerFile };
  Flush flush = Flush::kSyncfs;
  // Asked before every entry and before the flush; when it says stop, write_tree() throws
  // TransferError at once (and StagedTree removes what was built). A stop signal (SIGINT/SIGTERM,
  // stop_signal.h) must not wait for 10^5 files and a syncfs: the launcher may kill us soon
  // after, and then the staging tree would stay. nullptr: never stops.
  bool (*stop)() noexcept = nullptr;
  // Called before a file's bytes are read, with the end of its range in the data section:
  // returns once they are there (the stream may still be arriving: the placement writes files
  // as their bytes come, session/stream_progress.h), or throws to stop. Empty: all data is there.
  std::function<void(std::uint64_t)> await_data = nullptr;
};

// What was built, for the report.
struct TreeCounts {
  std::uint64_t directories = 0;
  std::uint64_t files = 0;
  std::uint64_t symlinks = 0;
  std::uint64_t hardlinks = 0;
  std::uint64_t bytes = 0;
};

// Builds `manifest` (re-validated against `limits` first) from `data`, its data section, under
// the empty directory open as `top_fd`. Throws SecurityError when the manifest fails validation
// or `data` is not its size (nothing written), TransferError naming the entry when a step fails
// (the caller removes what was built: StagedTree does).
TreeCounts write_tree(int top_fd, const TreeManifest& manifest, std::span<const std::byte> data,
                      const TreeWriteOptions& options = {}, const ManifestLimits& limits = {});

}  // namespace imgcast::replicator
