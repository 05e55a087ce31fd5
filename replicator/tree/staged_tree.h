// StagedTree: where a node's copy of a tree is built and how it is placed. A staging directory
// beside the destination (".NAME.imgcast-JOB.tmp/", mode 0700), filled by write_tree(), then
// renamed onto the destination in one step: until commit() nothing exists under the destination
// name, and on any failure (or destruction without commit) the staging tree is removed with
// remove_tree_at(), which never follows a symlink.
//
// Placement (commit()):
//  - no destination: renameat2(RENAME_NOREPLACE), so a destination created meanwhile is not
//    clobbered;
//  - a destination directory the caller knows to be an earlier copy (Existing::kReplace):
//    renameat2(RENAME_EXCHANGE) swaps the trees atomically, then the old tree (now under the
//    staging name) is removed. A filesystem without RENAME_EXCHANGE (EINVAL: some NFS, older
//    FUSE) gets two renames instead, the old tree to ".NAME.imgcast-JOB.old" and the new onto
//    the name: for that instant the destination is absent, never half-built, and a failure of
//    the second rename puts the old tree back.
//  - anything else there (a file, a symlink, a directory not known to be ours): InputError.
//
// Like StagedImage, the destination's directory is opened once and every step is relative to
// it; the directory itself must not resolve through a symlink unless the caller allows it.
//
// Like a staging file, the staging directory is flock()ed (on its own O_DIRECTORY descriptor)
// for its whole life, and create() first sweeps the directory's staging files and directories
// whose lock is free (their run died, e.g. SIGKILLed mid-build): staging_sweep.h.
#pragma once

#include <filesystem>
#include <span>
#include <string>

#include "replicator/tree/manifest.h"
#include "replicator/tree/tree_writer.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

class StagedTree {
 public:
  // Throws InputError when the destination's directory is missing or not writable, or the
  // destination has no name; SecurityError when its directory resolves through a symlink
  // (unless `follow_symlinks`). `job_tag` goes into the staging name ([A-Za-z0-9_-] only).
  static StagedTree create(const std::filesystem::path& destination, const std::string& job_tag,
                           bool follow_symlinks = false);

  StagedTree(StagedTree&& other) noexcept;
  StagedTree& operator=(StagedTree&&) = delete;
  StagedTree(const StagedTree&) = delete;
  StagedTree& operator=(const StagedTree&) = delete;
  ~StagedTree();  // removes the staging tree unless committed; logs, never throws

  // Builds the tree in the staging directory (write_tree()). Once only.
  TreeCounts write(const TreeManifest& manifest, std::span<const std::byte> data,
                   const TreeWriteOptions& options = {}, const ManifestLimits& limits = {});

  enum class Existing { kRefuse, kReplace };
  // Places the staging tree under the destination name (see above). Throws InputError when the
  // destination is in the way, TransferError when a rename fails; the staging tree is then
  // still removed by the destructor.
  void commit(Existing existing = Existing::kRefuse);
  // Removes the staging tree now (idempotent; no effect after commit).
  void discard() noexcept;

  const std::filesystem::path& destination() const noexcept { return destination_; }
  const std::string& staging_name() const noexcept { return temp_name_; }
  int staging_fd() const noexcept { return tree_fd_.get(); }
  bool committed() const noexcept { return committed_; }

 private:
  StagedTree() = default;
  void exchange_with_earlier();
  void replace_by_two_renames();
  void remove_old(const std::string& name) noexcept;

  std::filesystem::path destination_;
  std::string final_name_;
  std::string temp_name_;
  std::string old_name_;  // where the old tree waits during a two-rename replacement
  UniqueFd dir_fd_;       // the destination's directory
  UniqueFd tree_fd_;      // the staging directory
  bool written_ = false;
  bool committed_ = false;
  bool removed_ = false;
};

}  // namespace imgcast::replicator
