// The byte stream a tree travels as (docs/protocol.md, "Directory trees"): a fixed 32-byte
// header, the encoded manifest, then every regular file's bytes concatenated in manifest order.
// The whole stream is one "image" to the chunk pipeline, so chunk digests, the whole-image
// xxh3-128 and re-parenting carry it unchanged; only the two ends know it is a tree.
//
// The header is first so an agent finds the manifest's length in the first chunk (chunks are at
// least 4 KiB), and knows before anything else arrives whether the sizes add up to the image.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "replicator/tree/manifest.h"

namespace imgcast::replicator {

inline constexpr std::size_t kTreeHeaderBytes = 32;

struct TreeStreamHeader {
  std::uint64_t manifest_bytes = 0;
  std::uint64_t data_bytes = 0;
  // The whole stream's length, or 0 when the sum would overflow.
  std::uint64_t stream_bytes() const noexcept;
};

// "IMGCTREE", u32 version (1), u32 flags (0), u64 manifest bytes, u64 data bytes.
std::vector<std::byte> encode_tree_header(const TreeStreamHeader& header);
// The header at the front of `stream` (at least kTreeHeaderBytes of it), or nullopt when the
// magic, version or flags are wrong.
std::optional<TreeStreamHeader> decode_tree_header(std::span<const std::byte> stream) noexcept;

// Header and manifest for `manifest`: the stream's first bytes, followed by the file data.
// Throws InputError when the manifest is over `limits` (encode_manifest()).
std::vector<std::byte> encode_tree_prefix(const TreeManifest& manifest,
                                          const ManifestLimits& limits = {});

// A received stream, checked: its manifest decoded and validated, its data section the size the
// manifest says, and the manifest's digest for the cache record.
struct ReceivedTree {
  TreeManifest manifest;
  ImageDigest digest;                // manifest_digest() of the manifest's bytes
  std::span<const std::byte> data;   // the data section, inside the stream given
};
// Throws SecurityError with the reason when the stream is not a well-formed tree within
// `limits`: nothing may be written from it.
ReceivedTree parse_tree_stream(std::span<const std::byte> stream,
                               const ManifestLimits& limits = {});

}  // namespace imgcast::replicator
