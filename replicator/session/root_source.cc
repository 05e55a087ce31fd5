#include "replicator/session/root_source.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <system_error>

#include "replicator/errors.h"
#include "replicator/image/image_source.h"
#include "replicator/log.h"

namespace imgcast::replicator {

RootSource open_root_source(const std::vector<std::filesystem::path>& sources) {
  if (sources.empty()) {
    throw InputError("no source: name the image or directory to replicate");
  }
  struct stat st {};
  // stat, not lstat: a source named on the command line is followed (`env -> /lustre/envs/v3`).
  const bool directory = sources.size() == 1 && ::stat(sources[0].c_str(), &st) == 0 &&
                         S_ISDIR(st.st_mode);
  RootSource out;
  if (sources.size() == 1 && !directory) {
    // ImageSource::open names every other problem (missing, unreadable, a FIFO, ...).
    out.source = std::make_unique<ImageSource>(ImageSource::open(sources[0]));
    return out;
  }
  WalkedTree walked = directory ? walk_directory(sources[0]) : walk_sources(sources);
  if (walked.skipped_special > 0) {
    log().warn("left out {} device(s), socket(s) or FIFO(s) found in the source tree: only "
               "files, directories and symlinks are replicated",
               walked.skipped_special);
  }
  auto tree = std::make_unique<TreeStream>(std::move(walked));
  out.tree = tree.get();
  out.source = std::move(tree);
  return out;
}

void refuse_destination_inside_sources(const std::vector<std::filesystem::path>& sources,
                                       const std::filesystem::path& destination) {
  std::error_code error;
  const auto dst = std::filesystem::weakly_canonical(std::filesystem::absolute(destination), error);
  if (error) {
    return;  // the destination's own checks say what is wrong with it
  }
  for (const auto& source : sources) {
    struct stat st {};
    if (::stat(source.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      continue;
    }
    const auto top = std::filesystem::canonical(source, error);
    if (error) {
      continue;
    }
    // Component by component: /data/env2 is not inside /data/env.
    const auto [source_end, dst_at] = std::mismatch(top.begin(), top.end(), dst.begin(), dst.end());
    if (source_end == top.end()) {
      throw InputError(fmt::format(
          "destination {} is inside the source {}: the copy would land in the tree being read; "
          "name a destination outside it",
          destination.string(), source.string()));
    }
  }
}

TreeCounts count_entries(const TreeManifest& manifest) {
  TreeCounts counts;
  for (const TreeEntry& entry : manifest.entries) {
    switch (entry.type) {
      case TreeEntryType::kDirectory:
        ++counts.directories;
        break;
      case TreeEntryType::kFile:
        ++counts.files;
        break;
      case TreeEntryType::kSymlink:
        ++counts.symlinks;
        break;
      case TreeEntryType::kHardlink:
        ++counts.hardlinks;
        break;
    }
  }
  counts.bytes = manifest.data_bytes;
  return counts;
}

}  // namespace imgcast::replicator
