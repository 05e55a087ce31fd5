// What the root reads: one image file, or a directory tree (SRC a directory, or several
// sources) walked once and read as one stream (tree/tree_stream.h). Decided here, once, before
// any agent starts; everything after it sees a ChunkSource, and only the two ends of the
// transfer (this and tree_placement.h) know a tree from a file.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "replicator/image/chunk_source.h"
#include "replicator/tree/tree_stream.h"
#include "replicator/tree/tree_writer.h"

namespace imgcast::replicator {

struct RootSource {
  std::unique_ptr<ChunkSource> source;
  const TreeStream* tree = nullptr;  // set when `source` is a tree (owned by `source`)
};

// One source that is not a directory: the image file, exactly as before. One directory: its
// contents become DST (walk_directory). Several: each by its last component inside DST
// (walk_sources). Warns once when devices, sockets or FIFOs were left out. Throws InputError for
// a source that cannot be read or a tree over the manifest's limits.
RootSource open_root_source(const std::vector<std::filesystem::path>& sources);

// Throws InputError when `destination` (this host's) lies inside one of the directory sources:
// the copy would be written into the tree being read, and the next run would read it as part
// of its source.
void refuse_destination_inside_sources(const std::vector<std::filesystem::path>& sources,
                                       const std::filesystem::path& destination);

// What a tree holds, from its manifest: the report's files, directories, links and bytes.
TreeCounts count_entries(const TreeManifest& manifest);

}  // namespace imgcast::replicator
