#include "replicator/image/integrity.h"

#include <charconv>

#include <fmt/format.h>
#include <xxhash.h>
#if defined(__x86_64__)
// libxxhash's *_dispatch entry points pick AVX2/AVX-512 at run time: about twice the speed of
// the SSE2 baseline the plain symbols are built for.
#include <xxh_x86dispatch.h>
#define IMGCAST_XXH3_64 XXH3_64bits_dispatch
#define IMGCAST_XXH3_128_UPDATE XXH3_128bits_update_dispatch
#define IMGCAST_XXH3_64_UPDATE XXH3_64bits_update_dispatch
#else
#define IMGCAST_XXH3_64_UPDATE XXH3_64bits_update
#define IMGCAST_XXH3_64 XXH3_64bits
#define IMGCAST_XXH3_128_UPDATE XXH3_128bits_update
#endif

#include <algorithm>
#include <new>

namespace imgcast::replicator {

std::uint64_t chunk_digest(std::span<const std::byte> bytes) noexcept {
  return IMGCAST_XXH3_64(bytes.data(), bytes.size());
}

std::string ImageDigest::to_hex() const { return fmt::format("{:016x}{:016x}", high, low); }

std::optional<ImageDigest> ImageDigest::from_hex(std::string_view hex) noexcept {
  if (hex.size() != 32 || hex.find_first_not_of("0123456789abcdefABCDEF") != hex.npos) {
    return std::nullopt;
  }
  ImageDigest digest;
  (void)std::from_chars(hex.data(), hex.data() + 16, digest.high, 16);  // 16 hex digits: fit
  (void)std::from_chars(hex.data() + 16, hex.data() + 32, digest.low, 16);
  return digest;
}

// The xxHash streaming state, owned (XXH3_createState / XXH3_freeState).
struct ImageHasher::State {
  State() : state(XXH3_createState()), chunk(XXH3_createState()), saved(XXH3_createState()) {
    if (state == nullptr || chunk == nullptr || saved == nullptr) {
      XXH3_freeState(state);
      XXH3_freeState(chunk);
      XXH3_freeState(saved);
      throw std::bad_alloc();
    }
    XXH3_128bits_reset(state);
  }
  ~State() {
    XXH3_freeState(state);
    XXH3_freeState(chunk);
    XXH3_freeState(saved);
  }
  XXH3_state_t* state;  // the whole image, xxh3-128
  XXH3_state_t* chunk;  // the current chunk, xxh3-64 (update_and_digest_chunk)
  XXH3_state_t* saved;  // `state` before a chunk that may fail its check
};

ImageHasher::ImageHasher() : state_(std::make_unique<State>()) {}
ImageHasher::~ImageHasher() = default;

void ImageHasher::update(std::span<const std::byte> bytes) noexcept {
  IMGCAST_XXH3_128_UPDATE(state_->state, bytes.data(), bytes.size());
}

std::uint64_t ImageHasher::update_and_digest_chunk(std::span<const std::byte> bytes) noexcept {
  // 32 KiB blocks: the second hash reads what the first just pulled into L1/L2.
  constexpr std::size_t kBlock = 32 * 1024;
  XXH3_64bits_reset(state_->chunk);
  for (std::size_t at = 0; at < bytes.size(); at += kBlock) {
    const std::size_t length = std::min(kBlock, bytes.size() - at);
    IMGCAST_XXH3_64_UPDATE(state_->chunk, bytes.data() + at, length);
    IMGCAST_XXH3_128_UPDATE(state_->state, bytes.data() + at, length);
  }
  return XXH3_64bits_digest(state_->chunk);
}

bool ImageHasher::update_if_chunk_matches(std::span<const std::byte> bytes,
                                          std::uint64_t expected) noexcept {
  // Copying the state (~600 bytes) is far cheaper than a second pass over the chunk.
  XXH3_copyState(state_->saved, state_->state);
  if (update_and_digest_chunk(bytes) == expected) {
    return true;
  }
  XXH3_copyState(state_->state, state_->saved);
  return false;
}

ImageDigest ImageHasher::digest() const noexcept {
  const XXH128_hash_t hash = XXH3_128bits_digest(state_->state);
  return ImageDigest{hash.high64, hash.low64};
}

}  // namespace imgcast::replicator
