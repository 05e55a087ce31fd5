#include "replicator/session/tree_placement.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "replicator/errors.h"
#include "replicator/image/cache_record.h"
#include "replicator/log.h"
#include "replicator/stop_signal.h"
#include "replicator/tree/staged_tree.h"
#include "replicator/tree/stream_layout.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

namespace fs = std::filesystem;

namespace {

// The attribute cache_record.cc attaches (the record travels with the directory's inode).
constexpr const char* kRecordAttribute = "user.imgcast.cache";

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

bool check_tree_destination(const fs::path& destination, bool follow_symlinks) {
  if (!follow_symlinks) {
    refuse_symlinked_directory(destination);
  }
  const std::string name = destination.filename().string();
  if (name.empty() || name == "." || name == "..") {
    throw InputError(fmt::format(
        "destination {} does not name a directory to create, e.g. /tmp/job/env",
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
  char text[1024];
  const ssize_t n = ::fgetxattr(top.get(), kRecordAttribute, text, sizeof text);
  const auto record =
      n > 0 ? CacheRecord::decode(std::string_view(text, static_cast<std::size_t>(n)))
            : std::nullopt;
  // A record copied onto another directory does not describe it.
  if (!record || record->inode != static_cast<std::uint64_t>(st.st_ino) ||
      record->device != static_cast<std::uint64_t>(st.st_dev)) {
    throw in_the_way("a directory imgcast did not place");
  }
  return true;
}

TreeCounts place_tree(StagedImage& stream, const fs::path& destination, const std::string& job_tag,
                      bool follow_symlinks, const std::string& source_key,
                      const ImageDigest& digest) {
  // Validates header, sizes and the whole manifest before anything is created (SecurityError).
  const ReceivedTree received = parse_tree_stream(stream.bytes());
  // Asked again now: DST may have changed during the transfer.
  const bool replace = check_tree_destination(destination, follow_symlinks);
  StagedTree tree = StagedTree::create(destination, job_tag, follow_symlinks);
  TreeWriteOptions options;
  // On tmpfs there is nothing to write back; elsewhere one syncfs (docs/protocol.md).
  options.flush = stream.in_memory() ? TreeWriteOptions::Flush::kNone
                                     : TreeWriteOptions::Flush::kSyncfs;
  options.stop = stop_now;
  const TreeCounts counts = tree.write(received.manifest, received.data, options);
  if (!source_key.empty()) {
    CacheRecord record;
    record.source_key = source_key;
    record.image_bytes = stream.bytes().size();
    record.digest = digest;
    // On the staging directory before the rename, so the tree never shows without it. The
    // directory fd is only for a sidecar (file systems without user xattrs).
    UniqueFd dir(::open(directory_of(destination).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.valid()) {
      attach_cache_record(dir.get(), tree.staging_fd(), destination.filename().string(), record);
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

}  // namespace imgcast::replicator
