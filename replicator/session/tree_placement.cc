#include "replicator/session/tree_placement.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "replicator/errors.h"
#include "replicator/image/available_memory.h"
#include "replicator/image/cache_record.h"
#include "replicator/log.h"
#include "replicator/stop_signal.h"
#include "replicator/tree/staged_tree.h"
#include "replicator/tree/stream_layout.h"
#include "replicator/tree/tree_walk.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

namespace fs = std::filesystem;

namespace {

// The attribute cache_record.cc attaches (the record travels with the directory's inode).
constexpr const char* kRecordAttribute = "user.imgcast.cache";
// Beside it, the tree's state when it was placed (tree_state_key()).
constexpr const char* kStateAttribute = "user.imgcast.tree-state";

// What the tree open as `top_fd` is now, as it would be named at `destination`: every entry's
// name, type, size, mode, mtime and link target, and every file's inode, device and ctime. One
// lstat per entry, no contents read. Any change to a file since (a write, a chmod, a new inode)
// changes its ctime, which nobody can set back.
std::string tree_state_key(int top_fd, const fs::path& destination) {
  WalkedTree walked = walk_directory(fs::path("/proc/self/fd") / std::to_string(top_fd));
  walked.roots = {destination};  // the same key before the rename and after it
  return tree_source_key(walked);
}

std::string read_attribute(int fd, const char* name) {
  char text[1024];
  const ssize_t n = ::fgetxattr(fd, name, text, sizeof text);
  return n > 0 ? std::string(text, static_cast<std::size_t>(n)) : std::string();
}

// The record on the tree's top directory (open as `top_fd`, `st` its fstat), if it names that
// directory's own inode and device: a record copied onto another directory does not describe it.
std::optional<CacheRecord> own_record(int top_fd, const struct stat& st) {
  auto record = CacheRecord::decode(read_attribute(top_fd, kRecordAttribute));
  if (!record || record->inode != static_cast<std::uint64_t>(st.st_ino) ||
      record->device != static_cast<std::uint64_t>(st.st_dev)) {
    return std::nullopt;
  }
  return record;
}

bool stop_now() noexcept { return stop_requested(); }

}  // namespace

fs::path tree_destination(const std::string& destination) {
  fs::path named = fs::path(destination).lexically_normal();
  while (!named.has_filename() && named.has_parent_path() && named != named.root_path()) {
    named = named.parent_path();  // "dst/" names "dst"
  }
  return named;
}

fs::path tree_stream_staging(const fs::path& destination) {
  return directory_of(destination) / (destination.filename().string() + ".stream");
}

StagedImage stage_tree_stream(const fs::path& destination, std::uint64_t bytes,
                              const std::string& job_tag, bool follow_symlinks,
                              StagedImage::Reserve reserve) {
  const auto available = available_memory_bytes();
  if (!available || bytes > *available / kStreamMemoryShare) {
    return StagedImage::create(tree_stream_staging(destination), bytes, job_tag, 0600,
                               follow_symlinks, reserve);
  }
  // The tree needs about the stream's bytes in DST's file system: a full one fails here, before
  // data moves, as a staging file's reservation would have.
  if (const auto free = free_bytes(directory_of(destination)); free && *free < bytes) {
    throw TransferError(fmt::format(
        "no space for the tree's {} bytes in {} ({} bytes free): free space or pick another "
        "destination",
        bytes, directory_of(destination).string(), *free));
  }
  return StagedImage::create_in_memory(destination, bytes, reserve);
}

bool check_tree_destination(const fs::path& destination, bool follow_symlinks) {
  if (!follow_symlinks) {
    refuse_symlinked_directory(destination);
  }
  const std::string name = destination.filename().string();
  if (name.empty() || name == "." || name == "..") {
    throw InputError(
        fmt::format("destination {} does not name a directory to create, e.g. /tmp/job/env",
                    destination.string()));
  }
  UniqueFd dir(::open(directory_of(destination).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    return false;  // StagedImage::create() names what is wrong with the directory
  }
  struct stat st {};
  if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return false;  // nothing there: the tree is placed with RENAME_NOREPLACE
  }
  const auto in_the_way = [&](const char* what) {
    return InputError(fmt::format(
        "destination {} exists and is {}: a directory tree is placed only where nothing is, or "
        "over an earlier imgcast copy of a tree; remove it or name another destination",
        destination.string(), what));
  };
  if (!S_ISDIR(st.st_mode)) {
    throw in_the_way(S_ISLNK(st.st_mode) ? "a symlink" : "not a directory");
  }
  UniqueFd top(::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!top.valid() || ::fstat(top.get(), &st) != 0 || st.st_uid != ::geteuid()) {
    throw in_the_way("a directory that is not ours");
  }
  if (!own_record(top.get(), st)) {
    throw in_the_way("a directory imgcast did not place");
  }
  return true;
}

std::optional<CacheRecord> find_cached_tree(const fs::path& destination,
                                            const std::string& source_key,
                                            std::uint64_t image_bytes, bool force,
                                            bool follow_symlinks) {
  if (!follow_symlinks) {
    refuse_symlinked_directory(destination);  // before anything there is trusted
  }
  if (force || source_key.empty()) {
    return std::nullopt;
  }
  UniqueFd dir(::open(directory_of(destination).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  UniqueFd top(dir.valid() ? ::openat(dir.get(), destination.filename().c_str(),
                                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                           : -1);
  struct stat st {};
  if (!top.valid() || ::fstat(top.get(), &st) != 0 || st.st_uid != ::geteuid()) {
    return std::nullopt;
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    // Others may write this directory's attributes, the record among them: it proves nothing.
    log().info("{} is writable by others: its cached tree is not trusted; sending it again",
               destination.string());
    return std::nullopt;
  }
  const auto record = own_record(top.get(), st);
  if (!record || record->source_key != source_key || record->image_bytes != image_bytes) {
    return std::nullopt;
  }
  const std::string placed = read_attribute(top.get(), kStateAttribute);
  try {
    if (!placed.empty() && tree_state_key(top.get(), destination) == placed) {
      return record;
    }
  } catch (const ImgcastError& error) {
    log().info("cannot walk the cached tree {}: {}; sending it again", destination.string(),
               error.what());
    return std::nullopt;
  }
  log().info("the cached tree {} changed since it was placed; sending it again",
             destination.string());
  return std::nullopt;
}

namespace {

// place_tree() and place_tree_as_it_arrives(): `arriving` null when the whole stream is there and
// `digest` is its confirmed digest.
TreeCounts place(StagedImage& stream, const fs::path& destination, const std::string& job_tag,
                 bool follow_symlinks, const std::string& source_key,
                 std::optional<ImageDigest> digest, StreamProgress* arriving) {
  if (arriving != nullptr) {
    // The header says how long the manifest is; a malformed one is refused just below.
    arriving->wait_for(kTreeHeaderBytes);
    const auto header = decode_tree_header(stream.bytes());
    if (header && header->stream_bytes() == stream.bytes().size()) {
      arriving->wait_for(kTreeHeaderBytes + header->manifest_bytes);
    }
  }
  // Validates header, sizes and the whole manifest before anything is created (SecurityError).
  // It reads the header and the manifest only, not the data section.
  const ReceivedTree received = parse_tree_stream(stream.bytes());
  // Asked again now: DST may have changed during the transfer.
  const bool replace = check_tree_destination(destination, follow_symlinks);
  StagedTree tree = StagedTree::create(destination, job_tag, follow_symlinks);
  TreeWriteOptions options;
  // On tmpfs there is nothing to write back; elsewhere one syncfs (docs/protocol.md). Asked of
  // the tree's own file system: the stream may be in memory whatever DST is on.
  struct statfs tree_fs {};
  const bool tree_in_memory =
      ::fstatfs(tree.staging_fd(), &tree_fs) == 0 && memory_file_system(tree_fs.f_type);
  options.flush =
      tree_in_memory ? TreeWriteOptions::Flush::kNone : TreeWriteOptions::Flush::kSyncfs;
  options.stop = stop_now;
  if (arriving != nullptr) {
    const std::uint64_t data_start = stream.bytes().size() - received.data.size();
    options.await_data = [arriving, data_start](std::uint64_t end) {
      arriving->wait_for(data_start + end);
    };
  }
  const TreeCounts counts = tree.write(received.manifest, received.data, options);
  if (arriving != nullptr) {
    digest = arriving->wait_for_confirmation();
  }
  if (!source_key.empty()) {
    CacheRecord record;
    record.source_key = source_key;
    record.image_bytes = stream.bytes().size();
    record.digest = *digest;
    // On the staging directory before the rename, so the tree never shows without it. The
    // directory fd is only for a sidecar (file systems without user xattrs).
    UniqueFd dir(::open(directory_of(destination).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.valid()) {
      attach_cache_record(dir.get(), tree.staging_fd(), destination.filename().string(), record);
      // What the tree is as placed, for the next run's cache check (find_cached_tree). Without
      // it the tree is simply sent again next time.
      const std::string state = tree_state_key(tree.staging_fd(), destination);
      if (::fsetxattr(tree.staging_fd(), kStateAttribute, state.data(), state.size(), 0) != 0) {
        log().debug("no tree state on {}: {}", destination.string(), std::strerror(errno));
      }
    }
  }
  if (stop_requested()) {
    throw TransferError("stopped before placing the tree (a stop signal)");
  }
  tree.commit(replace ? StagedTree::Existing::kReplace : StagedTree::Existing::kRefuse);
  stream.discard();  // the stream was scratch space; the tree is the copy
  log().debug("placed the tree {}: {} files, {} directories, {} symlinks, {} hardlinks, {} bytes",
              destination.string(), counts.files, counts.directories, counts.symlinks,
              counts.hardlinks, counts.bytes);
  return counts;
}

}  // namespace

TreeCounts place_tree(StagedImage& stream, const fs::path& destination, const std::string& job_tag,
                      bool follow_symlinks, const std::string& source_key,
                      const ImageDigest& digest) {
  return place(stream, destination, job_tag, follow_symlinks, source_key, digest, nullptr);
}

TreeCounts place_tree_as_it_arrives(StagedImage& stream, const fs::path& destination,
                                    const std::string& job_tag, bool follow_symlinks,
                                    const std::string& source_key, StreamProgress& arriving) {
  return place(stream, destination, job_tag, follow_symlinks, source_key, std::nullopt, &arriving);
}

}  // namespace imgcast::replicator
