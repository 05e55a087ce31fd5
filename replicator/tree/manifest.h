// TreeManifest: what a replicated directory tree is (docs/protocol.md, "Directory trees"): its
// entries in stream order, each with a relative path, mode bits, mtime and owner, and for regular
// files where their bytes sit in the data section that follows the manifest in the stream.
//
// Its codec treats the bytes as hostile. decode_manifest() checks every count and length against
// ManifestLimits before allocating, then validate_manifest() checks the whole tree: paths
// relative and normalised, no duplicates, each parent an earlier directory (so no path goes
// through a symlink), hardlinks to earlier regular files, file data contiguous and summing to the
// total. Only a manifest that passes every check is returned, so a writer can trust its shape.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "replicator/image/integrity.h"

namespace imgcast::replicator {

enum class TreeEntryType : std::uint8_t {
  kDirectory = 1,
  kFile = 2,
  kSymlink = 3,
  kHardlink = 4,  // another name of an earlier kFile entry; carries no bytes of its own
};

// Mode bits a manifest may carry: permissions plus setuid, setgid and sticky. The file type is
// the entry's type, never mode bits, so a mode cannot smuggle in a device. The writer keeps
// setuid/setgid only when it also keeps the owner (run as root), like `cp -p`.
inline constexpr std::uint32_t kTreeModeBits = 07777;

struct TreeEntry {
  TreeEntryType type = TreeEntryType::kFile;
  std::string path{};  // relative, components joined by '/', e.g. "lib/python3.11/os.py"
  std::uint32_t mode = 0644;  // within kTreeModeBits
  std::int64_t mtime_ns = 0;  // since the epoch
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0;    // kFile: its bytes in the data section
  std::uint64_t offset = 0;  // kFile: where they start in the data section
  std::string target{};      // kSymlink: the link text (any bytes; stored, never followed)
  std::uint32_t link_to = 0;  // kHardlink: index of the earlier kFile entry it names

  bool operator==(const TreeEntry&) const = default;
};

// The tree's top: the destination directory itself, which has no entry (its path would be "").
struct TreeTop {
  std::uint32_t mode = 0755;
  std::int64_t mtime_ns = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  bool operator==(const TreeTop&) const = default;
};

struct TreeManifest {
  TreeTop top;
  std::vector<TreeEntry> entries;  // parents before children; file data in this order
  std::uint64_t data_bytes = 0;    // sum of every kFile entry's size

  bool operator==(const TreeManifest&) const = default;
};

// Bounds every decoder and encoder enforces, the root before it sends and each agent before it
// writes anything. Tests (and cautious callers) tighten them.
struct ManifestLimits {
  std::uint64_t max_entries = 10'000'000;
  std::size_t max_path_bytes = 4096;    // PATH_MAX: the whole relative path
  std::size_t max_name_bytes = 255;     // NAME_MAX: one component
  std::size_t max_target_bytes = 4096;  // a symlink's text
  std::uint32_t max_depth = 256;        // components in one path: bounds the writer's open fds
  std::uint64_t max_data_bytes = std::uint64_t{16} << 40;  // 16 TiB of file contents
};

// Encoded manifest: "ICTM" magic, u16 version, u16 flags (0), the top, u64 entry count, u64 data
// bytes, then each entry. Every integer little-endian; layout in docs/protocol.md.
inline constexpr std::uint32_t kManifestMagic = 0x4d544349;  // "ICTM" read as little-endian
inline constexpr std::uint16_t kManifestVersion = 1;

// Throws InputError naming the first problem validate_manifest() finds: the root refuses to send
// what its agents would refuse.
std::vector<std::byte> encode_manifest(const TreeManifest& manifest,
                                       const ManifestLimits& limits = {});

struct DecodedManifest {
  std::optional<TreeManifest> manifest;  // set only when every check passed
  std::string refusal;                   // else one line: what is wrong, naming the entry
};
// Exactly `bytes` must be the manifest (no trailing bytes).
DecodedManifest decode_manifest(std::span<const std::byte> bytes,
                                const ManifestLimits& limits = {});

// Empty when `manifest` is a well-formed tree within `limits`, else the first problem found.
std::string validate_manifest(const TreeManifest& manifest, const ManifestLimits& limits = {});

// xxh3-128 of the encoded manifest: names the tree for the cache record and the report.
ImageDigest manifest_digest(std::span<const std::byte> encoded) noexcept;

}  // namespace imgcast::replicator
