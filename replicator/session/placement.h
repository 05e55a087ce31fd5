// Placement: the node-local cache check before a transfer and the commit after it, the same on
// the root and on every agent. A node whose destination already holds this image (its cache
// record names the same source key and size, the copy and its record are ours and no one else
// could have planted or swapped them, and the copy's bytes re-hash to the record's digest) is
// skipped; any other stages a StagedImage, and once its copy is verified commits it with a
// fresh record.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "replicator/image/cache_record.h"
#include "replicator/image/integrity.h"
#include "replicator/image/staged_image.h"

namespace imgcast::replicator {

// The record of a copy at `destination` that is this image already, or nullopt (`force`, no
// source key, no record, one for another source or size, a copy or record someone else could
// have written (file_trust.h), or a copy whose bytes do not re-hash to the record's digest).
// Throws SecurityError first when the destination's directory is reached through a symlink and
// !follow_symlinks (checked even with `force`, before anything is trusted or written there).
// A hit costs one read of the whole copy (~0.3-0.5 s per GiB from the page cache).
std::optional<CacheRecord> find_cached_copy(const std::string& destination,
                                            const std::string& source_key,
                                            std::uint64_t image_bytes, bool force,
                                            bool follow_symlinks);

// Commits the verified copy under its destination name, with a cache record for the next run
// when the source has a key. Throws TransferError (the temporary file is then still removed).
void place_copy(StagedImage& image, const std::string& source_key, const ImageDigest& digest);

}  // namespace imgcast::replicator
