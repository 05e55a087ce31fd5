#include "replicator/tree/staged_tree.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <stdio.h>  // renameat2
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <utility>

#include "replicator/errors.h"
#include "replicator/image/cache_record.h"
#include "replicator/image/staged_image.h"
#include "replicator/image/staging_sweep.h"
#include "replicator/log.h"
#include "replicator/tree/safe_remove.h"

namespace imgcast::replicator {

namespace fs = std::filesystem;

namespace {

// The same rule as StagedImage's staging names: a tag cannot add a '/' or a dot-dot.
std::string sanitized(const std::string& tag) {
  std::string out;
  for (const char c : tag) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_';
    out.push_back(safe ? c : '_');
  }
  return out;
}

}  // namespace

StagedTree StagedTree::create(const fs::path& destination, const std::string& job_tag,
                              bool follow_symlinks) {
  fs::path named = destination;
  if (!named.has_filename()) named = named.parent_path();  // "dst/" names "dst"
  const std::string name = named.filename().string();
  if (name.empty() || name == "." || name == ".." || name == "/") {
    throw InputError(fmt::format("destination {} does not name a directory to create, e.g. "
                                 "/tmp/job/env",
                                 destination.string()));
  }
  const fs::path dir = directory_of(named);
  StagedTree tree;
  tree.destination_ = named;
  tree.final_name_ = name;
  tree.dir_fd_ = open_destination_directory(dir);
  if (!follow_symlinks) refuse_symlinked_directory(named);

  // Staging trees (and files) of runs that died (SIGKILL, a crash) would fill the disk over
  // time: their builder's lock is gone, so they go now (staging_sweep.h).
  (void)sweep_stale_staging(tree.dir_fd_.get(), dir.string());

  const std::string base = "." + name + ".imgcast-" + sanitized(job_tag);
  std::mt19937 random(std::random_device{}());
  for (int attempt = 0; attempt < 16 && tree.temp_name_.empty(); ++attempt) {
    std::string candidate =
        attempt == 0 ? base + ".tmp" : fmt::format("{}-{:x}.tmp", base, random());
    if (::mkdirat(tree.dir_fd_.get(), candidate.c_str(), 0700) != 0) {
      if (errno == EEXIST) continue;  // another live run's, or not ours: try another name
      const int error = errno;
      if (error == EACCES || error == EPERM || error == EROFS) {
        throw InputError(fmt::format("destination directory {} is not writable: {}",
                                     dir.string(), std::strerror(error)));
      }
      throw TransferError(fmt::format("cannot create a staging directory in {}: {}",
                                      dir.string(), std::strerror(error)));
    }
    // O_NOFOLLOW: the name was just made a directory by us; if it is anything else now, stop.
    UniqueFd fd(::openat(tree.dir_fd_.get(), candidate.c_str(),
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid() && errno == ENOENT) continue;  // a sweep took it before our lock was on
    if (!fd.valid()) {
      const int error = errno;
      tree.temp_name_ = std::move(candidate);  // ours: the destructor removes it
      throw TransferError(fmt::format("cannot open the staging directory {} in {}: {}",
                                      tree.temp_name_, dir.string(), std::strerror(error)));
    }
    // The liveness lock, held on this descriptor until the tree is placed or removed: a sweep
    // (ours or another run's) removes a staging directory only when it can take it.
    if (!claim_staging_file(tree.dir_fd_.get(), candidate, fd.get())) {
      continue;  // swept between our mkdir and the lock: the name is not ours any more
    }
    tree.temp_name_ = std::move(candidate);  // ours to remove from here on
    tree.tree_fd_ = std::move(fd);
  }
  if (tree.temp_name_.empty()) {
    throw TransferError(fmt::format(
        "cannot create a staging directory in {}: too many {}* entries held by live runs or "
        "not ours; remove them",
        dir.string(), base));
  }
  tree.old_name_ = base + ".old";
  return tree;
}

StagedTree::StagedTree(StagedTree&& other) noexcept
    : destination_(std::move(other.destination_)),
      final_name_(std::move(other.final_name_)),
      temp_name_(std::exchange(other.temp_name_, {})),
      old_name_(std::move(other.old_name_)),
      dir_fd_(std::move(other.dir_fd_)),
      tree_fd_(std::move(other.tree_fd_)),
      written_(other.written_),
      committed_(other.committed_),
      removed_(std::exchange(other.removed_, true)) {}

StagedTree::~StagedTree() { discard(); }

void StagedTree::discard() noexcept {
  if (committed_ || removed_ || temp_name_.empty() || !dir_fd_.valid()) return;
  removed_ = true;
  // The lock stays on (tree_fd_ open) until the tree is gone: released earlier, another run's
  // sweep would take it and remove the same tree alongside us.
  if (!remove_tree_at(dir_fd_.get(), temp_name_)) {
    log().warn("could not remove the staging tree {} beside {}: {}", temp_name_,
               destination_.string(), std::strerror(errno));
  }
  tree_fd_.reset();
}

TreeCounts StagedTree::write(const TreeManifest& manifest, std::span<const std::byte> data,
                             const TreeWriteOptions& options, const ManifestLimits& limits) {
  if (written_ || removed_ || committed_) {
    throw std::logic_error("StagedTree::write called twice or after commit/discard");
  }
  written_ = true;
  return write_tree(tree_fd_.get(), manifest, data, options, limits);
}

void StagedTree::commit(Existing existing) {
  if (committed_ || removed_) throw std::logic_error("StagedTree::commit after commit/discard");
  const int dir = dir_fd_.get();
  if (::renameat2(dir, temp_name_.c_str(), dir, final_name_.c_str(), RENAME_NOREPLACE) == 0) {
    committed_ = true;
  } else if (errno == EINVAL || errno == ENOSYS) {
    // No RENAME_NOREPLACE here: check, then a plain rename. renameat would replace an empty
    // directory, so the check is what keeps one that appeared from being taken.
    struct stat st {};
    if (::fstatat(dir, final_name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      errno = EEXIST;
    } else if (::renameat(dir, temp_name_.c_str(), dir, final_name_.c_str()) == 0) {
      committed_ = true;
    }
  }
  if (!committed_ && errno != EEXIST) {
    throw TransferError(fmt::format("cannot place the tree at {}: {}", destination_.string(),
                                    std::strerror(errno)));
  }
  if (!committed_) {
    struct stat st {};
    if (::fstatat(dir, final_name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISDIR(st.st_mode)) {
      throw InputError(fmt::format("destination {} exists and is not a directory: remove it or "
                                   "name another destination",
                                   destination_.string()));
    }
    if (existing != Existing::kReplace) {
      throw InputError(fmt::format("destination {} already exists and is not an earlier imgcast "
                                   "copy: remove it or name another destination",
                                   destination_.string()));
    }
    exchange_with_earlier();
  }
  // The rename is durable only once the directory holding it is.
  if (::fsync(dir) != 0) {
    log().warn("fsync of the directory of {} failed: {}", destination_.string(),
               std::strerror(errno));
  }
}

void StagedTree::exchange_with_earlier() {
  const int dir = dir_fd_.get();
  if (::renameat2(dir, temp_name_.c_str(), dir, final_name_.c_str(), RENAME_EXCHANGE) == 0) {
    committed_ = true;
    remove_old(temp_name_);  // the earlier tree now has the staging name
    return;
  }
  if (errno != EINVAL && errno != ENOSYS) {
    throw TransferError(fmt::format("cannot replace the earlier copy at {}: {}",
                                    destination_.string(), std::strerror(errno)));
  }
  replace_by_two_renames();
}

void StagedTree::replace_by_two_renames() {
  const int dir = dir_fd_.get();
  log().debug("no RENAME_EXCHANGE beside {}: replacing the earlier copy by two renames",
              destination_.string());
  (void)remove_tree_at(dir, old_name_);  // left by a run that died between the two renames
  if (::renameat(dir, final_name_.c_str(), dir, old_name_.c_str()) != 0) {
    throw TransferError(fmt::format("cannot move the earlier copy at {} aside: {}",
                                    destination_.string(), std::strerror(errno)));
  }
  if (::renameat(dir, temp_name_.c_str(), dir, final_name_.c_str()) != 0) {
    const int error = errno;
    // Put the earlier copy back: a failed replacement leaves what was there.
    (void)::renameat(dir, old_name_.c_str(), dir, final_name_.c_str());
    throw TransferError(fmt::format("cannot place the tree at {}: {}", destination_.string(),
                                    std::strerror(error)));
  }
  committed_ = true;
  remove_old(old_name_);
}

void StagedTree::remove_old(const std::string& name) noexcept {
  if (!remove_tree_at(dir_fd_.get(), name)) {
    log().warn("the new tree is at {}, but the earlier copy ({} beside it) could not be removed: "
               "{}",
               destination_.string(), name, std::strerror(errno));
  }
}

}  // namespace imgcast::replicator
