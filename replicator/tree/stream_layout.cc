#include "replicator/tree/stream_layout.h"

#include <fmt/format.h>

#include <cstring>

#include "replicator/errors.h"
#include "replicator/protocol/byte_codec.h"

namespace imgcast::replicator {

namespace {
constexpr char kMagic[8] = {'I', 'M', 'G', 'C', 'T', 'R', 'E', 'E'};
constexpr std::uint32_t kVersion = 1;
}  // namespace

std::uint64_t TreeStreamHeader::stream_bytes() const noexcept {
  const std::uint64_t limit = UINT64_MAX - kTreeHeaderBytes;
  if (manifest_bytes > limit || data_bytes > limit - manifest_bytes) return 0;
  return kTreeHeaderBytes + manifest_bytes + data_bytes;
}

std::vector<std::byte> encode_tree_header(const TreeStreamHeader& header) {
  ByteWriter out;
  out.raw(std::as_bytes(std::span(kMagic)));
  out.u32(kVersion).u32(0).u64(header.manifest_bytes).u64(header.data_bytes);
  return out.take();
}

std::optional<TreeStreamHeader> decode_tree_header(std::span<const std::byte> stream) noexcept {
  if (stream.size() < kTreeHeaderBytes) return std::nullopt;
  ByteReader in(stream.first(kTreeHeaderBytes));
  const auto magic = in.raw(sizeof kMagic);
  if (magic.empty() || std::memcmp(magic.data(), kMagic, sizeof kMagic) != 0) return std::nullopt;
  if (in.u32() != kVersion || in.u32() != 0) return std::nullopt;
  TreeStreamHeader header;
  header.manifest_bytes = in.u64();
  header.data_bytes = in.u64();
  if (!in.done()) return std::nullopt;
  return header;
}

std::vector<std::byte> encode_tree_prefix(const TreeManifest& manifest,
                                          const ManifestLimits& limits) {
  const std::vector<std::byte> encoded = encode_manifest(manifest, limits);
  std::vector<std::byte> prefix =
      encode_tree_header({.manifest_bytes = encoded.size(), .data_bytes = manifest.data_bytes});
  prefix.insert(prefix.end(), encoded.begin(), encoded.end());
  return prefix;
}

ReceivedTree parse_tree_stream(std::span<const std::byte> stream, const ManifestLimits& limits) {
  const auto header = decode_tree_header(stream);
  if (!header) throw SecurityError("refused a tree: the stream does not start with a tree header");
  // Checked before the manifest is looked at: the lengths must describe exactly this stream.
  if (header->stream_bytes() != stream.size()) {
    throw SecurityError(fmt::format(
        "refused a tree: its header describes {} manifest and {} data bytes, the stream has {}",
        header->manifest_bytes, header->data_bytes, stream.size()));
  }
  const auto manifest_bytes = stream.subspan(kTreeHeaderBytes, header->manifest_bytes);
  DecodedManifest decoded = decode_manifest(manifest_bytes, limits);
  if (!decoded.manifest) throw SecurityError("refused a tree manifest: " + decoded.refusal);
  if (decoded.manifest->data_bytes != header->data_bytes) {
    throw SecurityError("refused a tree: its header and manifest disagree on the data size");
  }
  ReceivedTree tree;
  tree.manifest = std::move(*decoded.manifest);
  tree.digest = manifest_digest(manifest_bytes);
  tree.data = stream.subspan(kTreeHeaderBytes + header->manifest_bytes);
  return tree;
}

}  // namespace imgcast::replicator
