// Tree placement: how a node (the root's own copy included) turns a verified tree stream into a
// directory at DST. The stream itself is received like any image, into a StagedImage: in memory
// when it fits (stage_tree_stream()), else beside DST under a name of its own
// (tree_stream_staging(): ".NAME.stream.imgcast-JOB.tmp"), so the staging sweeps and the
// stop-signal handler cover it as they cover every staging file, and no one takes it for DST. Once
// the whole stream's xxh3-128 matches the root's, place_tree() parses it (nothing is written from a
// manifest that fails validation), builds the tree in a StagedTree
// (".NAME.imgcast-JOB.tmp/"), flushes it, places it atomically and removes the stream's file:
// it was scratch space. On any failure nothing appears at DST and both staging names go.
//
// "An earlier copy" (the one DST a new tree may replace): a directory at DST, not reached by a
// symlink, owned by us, carrying the cache record attached when imgcast placed it (the xattr
// user.imgcast.cache on the directory) whose inode and device are that directory's. Anything
// else at DST is refused before data moves: imgcast never removes a tree it did not place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "replicator/image/cache_record.h"
#include "replicator/image/integrity.h"
#include "replicator/image/staged_image.h"
#include "replicator/session/stream_progress.h"
#include "replicator/tree/tree_writer.h"

namespace imgcast::replicator {

// DST as the tree's directory name: "/tmp/job/" and "/tmp/job/." name "/tmp/job".
std::filesystem::path tree_destination(const std::string& destination);

// Where a stream too large for memory is staged: "NAME.stream" beside DST, which StagedImage
// turns into the hidden staging file ".NAME.stream.imgcast-JOB.tmp" (never committed under that
// name).
std::filesystem::path tree_stream_staging(const std::filesystem::path& destination);

// A stream of at most 1/kStreamMemoryShare of the memory available now is staged in memory
// (StagedImage::create_in_memory): it is scratch, read once by the placement, so on a disk it
// would only be written back and deleted moments later (a third more bytes written for a
// 20,000-file tree, docs/perf.md), and it would take the tree's size a second time on DST. A
// larger one goes to tree_stream_staging(). Either way DST's file system must have the stream's
// bytes free (TransferError before data moves).
inline constexpr std::uint64_t kStreamMemoryShare = 4;
StagedImage stage_tree_stream(const std::filesystem::path& destination, std::uint64_t bytes,
                              const std::string& job_tag, bool follow_symlinks,
                              StagedImage::Reserve reserve = StagedImage::Reserve::kNow);

// Whether DST is an earlier copy (replaced on placement); false when nothing is there. Throws
// InputError when something else is in the way, SecurityError when DST's directory resolves
// through a symlink and !follow_symlinks.
bool check_tree_destination(const std::filesystem::path& destination, bool follow_symlinks);

// The record of an earlier tree at `destination` that is this source's stream still as it was
// placed, or nullopt (`force`, no source key, nothing ours there, a record for another source,
// a top directory others may write, or any entry changed since: tree_placement.cc). One lstat
// per entry, no contents read. Throws SecurityError first when DST's directory resolves through
// a symlink and !follow_symlinks.
std::optional<CacheRecord> find_cached_tree(const std::filesystem::path& destination,
                                            const std::string& source_key,
                                            std::uint64_t image_bytes, bool force,
                                            bool follow_symlinks);

// Parses the verified stream in `stream` and places it as DST (see above). `source_key` and
// `digest` (the whole stream's) go into the new tree's record. Throws SecurityError for a
// malformed tree, InputError when DST is in the way, TransferError when a step fails or a stop
// signal came; then nothing is at DST and the staging tree is removed.
TreeCounts place_tree(StagedImage& stream, const std::filesystem::path& destination,
                      const std::string& job_tag, bool follow_symlinks,
                      const std::string& source_key, const ImageDigest& digest);

// The same while the stream still arrives (run from the plan on, on the placement's thread):
// the manifest is parsed once its bytes are checked, each file written once its own are, and
// the tree placed only once `arriving` confirms the whole stream's digest; on fail() the staging
// tree is removed. The bytes are checked chunk by chunk before they are written, and nothing
// leaves the staging directory before the whole stream matched the root's digest.
TreeCounts place_tree_as_it_arrives(StagedImage& stream, const std::filesystem::path& destination,
                                    const std::string& job_tag, bool follow_symlinks,
                                    const std::string& source_key, StreamProgress& arriving);

}  // namespace imgcast::replicator
