#include "replicator/session/cache_placement.h"

#include <fmt/format.h>

#include "replicator/cache/entry_placement.h"
#include "replicator/errors.h"
#include "replicator/log.h"

namespace imgcast::replicator {

namespace {

// Checked before the cache is opened: a relative directory would land wherever the agent runs.
CacheTarget checked(CacheTarget target) {
  if (!target.cache_dir.is_absolute()) {
    throw InputError(fmt::format("the cache directory {} is not an absolute path",
                                 target.cache_dir.string()));
  }
  return target;
}

}  // namespace

CachePlacement::CachePlacement(CacheTarget target)
    : target_(checked(std::move(target))), cache_(NodeCache::open(target_.cache_dir)) {}

std::optional<ImageDigest> CachePlacement::find(std::uint64_t image_bytes, bool force) {
  if (force) {
    return std::nullopt;
  }
  pin_ = cache_.find_by_source(target_.source_key, image_bytes);
  if (!pin_) {
    return std::nullopt;
  }
  place_destination();
  return pin_->record().digest;
}

StagedImage CachePlacement::stage(std::uint64_t image_bytes, StagedImage::Reserve reserve) {
  // With our entry pinned the copy is a buffer that place() drops: a reservation of no bytes
  // (nothing evicted for it) still marks its staging file as a live run's.
  room_ = pin_ ? cache_.admit(0, 0, target_.job_tag)
               : cache_.admit(image_bytes, target_.budget, target_.job_tag);
  return StagedImage::create(cache_.staging_path(target_.job_tag), image_bytes, target_.job_tag,
                             0600, /*follow_symlinks=*/false, reserve);
}

void CachePlacement::place(StagedImage& image, const ImageDigest& digest) {
  image.commit();  // fsync and rename inside the cache's staging directory
  pin_ = cache_.commit(target_.job_tag, digest, target_.source_key, target_.source_path);
  room_.release();  // the entry counts now, not the reservation
  place_destination();
}

void CachePlacement::place_destination() {
  if (!target_.destination.empty()) {
    const EntryPlacement how = place_from_entry(*pin_, target_.destination, target_.mode,
                                                target_.job_tag, target_.follow_symlinks);
    log().info("{} from the cache ({})", target_.destination, placement_name(how));
  }
  if (target_.keep_pin) {
    target_.keep_pin(pin_->fd());
  }
}

}  // namespace imgcast::replicator
