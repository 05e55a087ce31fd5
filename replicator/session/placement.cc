#include "replicator/session/placement.h"

namespace imgcast::replicator {

std::optional<CacheRecord> find_cached_copy(const std::string& destination,
                                            const std::string& source_key,
                                            std::uint64_t image_bytes, bool force,
                                            bool follow_symlinks) {
  if (!follow_symlinks) {
    refuse_symlinked_directory(destination);
  }
  if (force || source_key.empty()) {
    return std::nullopt;
  }
  // The cheap checks first (ownership, identity, key, size); the re-hash only for a copy that
  // would otherwise be taken.
  std::optional<CachedCopy> copy = open_cached_copy(destination);
  if (!copy || copy->record.source_key != source_key || copy->record.image_bytes != image_bytes ||
      !content_matches(*copy, destination)) {
    return std::nullopt;
  }
  return std::move(copy->record);
}

void place_copy(StagedImage& image, const std::string& source_key, const ImageDigest& digest) {
  if (source_key.empty()) {
    image.commit();  // a source without a key (not a regular file) is never found cached
    return;
  }
  CacheRecord record;
  record.source_key = source_key;
  record.image_bytes = image.bytes().size();
  record.digest = digest;
  image.commit(&record);
}

}  // namespace imgcast::replicator
