// DST from a cache entry, without a second copy of the bytes where the file system allows it:
// a reflink (FICLONE: xfs, btrfs; its own inode, so DST may be written without touching the
// entry), else a hard link (the same inode: DST is then read-only, like the entry), else a copy
// (another file system). Always atomic: built under a staging name beside DST and renamed over
// it, so DST is either what it was or the whole image.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

#include "replicator/cache/node_cache.h"

namespace imgcast::replicator {

enum class EntryPlacement { kAlreadyThere, kReflink, kHardLink, kCopy };
const char* placement_name(EntryPlacement how) noexcept;

// Places `destination` from the pinned entry. Throws InputError for an unusable directory,
// SecurityError for one reached through a symlink (unless `follow_symlinks`), TransferError
// when the copy fails (a full disk: the staging file is removed).
EntryPlacement place_from_entry(const EntryPin& entry, const std::filesystem::path& destination,
                                mode_t mode, const std::string& job_tag, bool follow_symlinks);

}  // namespace imgcast::replicator
