// Test support for the node cache: an image staged into a cache the way a run stages it (admit,
// StagedImage at staging_path, verified digest, commit).
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "replicator/cache/node_cache.h"
#include "replicator/image/integrity.h"
#include "replicator/image/staged_image.h"

namespace imgcast::replicator::test_cache {

inline constexpr std::uint64_t kMiB = 1 << 20;

// A source key of 16 hex digits from a small number.
inline std::string key(int n) { return fmt::format("{:016x}", 0xabc0000 + n); }

// `bytes` bytes filled with `fill`, staged and committed under `source_key`.
inline EntryPin stage(NodeCache& cache, const std::string& job_tag, std::uint64_t bytes,
                      char fill, const std::string& source_key, std::uint64_t budget = 0) {
  CacheReservation room = cache.admit(bytes, budget, job_tag);
  StagedImage image = StagedImage::create(cache.staging_path(job_tag), bytes, job_tag, 0600);
  std::memset(image.bytes().data(), fill, image.bytes().size());
  ImageHasher hasher;
  hasher.update(image.bytes());
  image.commit();
  return cache.commit(job_tag, hasher.digest(), source_key, "/src/" + source_key);
}

inline ImageDigest digest_of(std::uint64_t bytes, char fill) {
  std::string data(bytes, fill);
  ImageHasher hasher;
  hasher.update(std::as_bytes(std::span(data)));
  return hasher.digest();
}

}  // namespace imgcast::replicator::test_cache
