// Integrity: xxh3-64 per chunk (checked on arrival, before a chunk is forwarded or counted) and
// xxh3-128 over the whole image (checked before the file is placed).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace imgcast::replicator {

std::uint64_t chunk_digest(std::span<const std::byte> bytes) noexcept;

struct ImageDigest {
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  bool operator==(const ImageDigest&) const = default;
  std::string to_hex() const;  // 32 lowercase hex digits, high first
  // The inverse of to_hex(): exactly 32 hex digits, else nullopt.
  static std::optional<ImageDigest> from_hex(std::string_view hex) noexcept;
};

// Streaming xxh3-128 over the image, fed in order.
class ImageHasher {
 public:
  ImageHasher();
  ~ImageHasher();
  ImageHasher(const ImageHasher&) = delete;
  ImageHasher& operator=(const ImageHasher&) = delete;

  void update(std::span<const std::byte> bytes) noexcept;
  // update(bytes) and chunk_digest(bytes) in one pass: both hashes walk the chunk block by block
  // while each block is in L1/L2, instead of reading the whole chunk from memory twice.
  std::uint64_t update_and_digest_chunk(std::span<const std::byte> bytes) noexcept;
  // The same, kept only when the chunk's digest is `expected`: a chunk that fails its check
  // leaves the image hash as it was, so the chunk can be fetched again and fed once more.
  bool update_if_chunk_matches(std::span<const std::byte> bytes, std::uint64_t expected) noexcept;
  ImageDigest digest() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace imgcast::replicator
