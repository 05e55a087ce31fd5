#include "replicator/tree/manifest.h"

#include <fmt/format.h>

#include <string_view>
#include <unordered_map>

#include "replicator/errors.h"
#include "replicator/protocol/byte_codec.h"

namespace imgcast::replicator {

namespace {

// Bytes of the smallest possible entry (a directory with a one-byte name): type u8, mode u16,
// mtime u64, uid u32, gid u32, path length u32, one path byte. A count is checked against it
// before anything is allocated, so a 40-byte input cannot claim a billion entries.
constexpr std::size_t kMinEntryBytes = 1 + 2 + 8 + 4 + 4 + 4 + 1;

// The printable form of a hostile path in a refusal: bytes outside ASCII graphics as \xNN, cut
// short, so a log line stays one line and bounded.
std::string shown(std::string_view path) {
  std::string out;
  for (const char c : path.substr(0, 200)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f && c != '\\') {
      out.push_back(c);
    } else {
      out += fmt::format("\\x{:02x}", byte);
    }
  }
  if (path.size() > 200) out += "...";
  return out;
}

// Empty when `path` is relative and normalised within the limits, else why not.
std::string check_path(std::string_view path, const ManifestLimits& limits) {
  if (path.empty()) return "an empty path";
  if (path.size() > limits.max_path_bytes) {
    return fmt::format("a path of {} bytes (at most {})", path.size(), limits.max_path_bytes);
  }
  if (path.find('\0') != std::string_view::npos) return "a NUL byte in a path";
  if (path.front() == '/') return "an absolute path";
  std::uint32_t depth = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = path.find('/', start);
    const std::string_view name =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (name.empty()) return "an empty path component";
    if (name == "." || name == "..") return fmt::format("a '{}' path component", name);
    if (name.size() > limits.max_name_bytes) {
      return fmt::format("a name of {} bytes (at most {})", name.size(), limits.max_name_bytes);
    }
    if (++depth > limits.max_depth) {
      return fmt::format("a path deeper than {} components", limits.max_depth);
    }
    if (slash == std::string_view::npos) return {};
    start = slash + 1;
  }
}

std::string_view parent_of(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view{} : path.substr(0, slash);
}

// Fields that do not apply to an entry's type stay at their defaults: then encode and decode
// are exact inverses and no byte of the input goes unchecked.
bool unused_fields_clear(const TreeEntry& entry) {
  const bool file = entry.type == TreeEntryType::kFile;
  if (!file && (entry.size != 0 || entry.offset != 0)) return false;
  if (entry.type != TreeEntryType::kSymlink && !entry.target.empty()) return false;
  if (entry.type != TreeEntryType::kHardlink && entry.link_to != 0) return false;
  return true;
}

}  // namespace

std::string validate_manifest(const TreeManifest& manifest, const ManifestLimits& limits) {
  const auto& entries = manifest.entries;
  if (entries.size() > limits.max_entries) {
    return fmt::format("{} entries (at most {})", entries.size(), limits.max_entries);
  }
  if (manifest.data_bytes > limits.max_data_bytes) {
    return fmt::format("{} bytes of file data (at most {})", manifest.data_bytes,
                       limits.max_data_bytes);
  }
  if ((manifest.top.mode & ~kTreeModeBits) != 0) return "the top's mode has non-permission bits";

  // Every path seen so far, to find duplicates and parents. The views point into `entries`,
  // which outlives the map.
  std::unordered_map<std::string_view, std::uint32_t> index_of;
  index_of.reserve(entries.size());
  std::uint64_t next_offset = 0;
  for (std::uint32_t i = 0; i < entries.size(); ++i) {
    const TreeEntry& entry = entries[i];
    const auto refuse = [&](const std::string& why) {
      return fmt::format("entry {} ({}): {}", i, shown(entry.path), why);
    };
    if (const std::string bad = check_path(entry.path, limits); !bad.empty()) return refuse(bad);
    if ((entry.mode & ~kTreeModeBits) != 0) return refuse("mode has non-permission bits");
    if (!unused_fields_clear(entry)) return refuse("fields set that its type does not use");

    const std::string_view parent = parent_of(entry.path);
    if (!parent.empty()) {
      const auto found = index_of.find(parent);
      if (found == index_of.end()) return refuse("its directory is not an earlier entry");
      // A parent that is not a directory is how a tree would write through a symlink.
      if (entries[found->second].type != TreeEntryType::kDirectory) {
        return refuse("its parent is not a directory");
      }
    }
    if (!index_of.emplace(entry.path, i).second) return refuse("a duplicate path");

    switch (entry.type) {
      case TreeEntryType::kDirectory:
        break;
      case TreeEntryType::kFile:
        if (entry.offset != next_offset) {
          return refuse(fmt::format("data at offset {} where {} was due", entry.offset,
                                    next_offset));
        }
        // Subtraction, not addition: a hostile size cannot wrap the sum.
        if (entry.size > manifest.data_bytes - next_offset) {
          return refuse("its data runs past the manifest's total");
        }
        next_offset += entry.size;
        break;
      case TreeEntryType::kSymlink:
        if (entry.target.empty()) return refuse("an empty symlink target");
        if (entry.target.size() > limits.max_target_bytes) {
          return refuse(fmt::format("a symlink target of {} bytes (at most {})",
                                    entry.target.size(), limits.max_target_bytes));
        }
        if (entry.target.find('\0') != std::string::npos) return refuse("a NUL in a target");
        break;
      case TreeEntryType::kHardlink:
        if (entry.link_to >= i) return refuse("a hardlink to a later entry");
        if (entries[entry.link_to].type != TreeEntryType::kFile) {
          return refuse("a hardlink to an entry that is not a regular file");
        }
        break;
      default:
        return refuse("an unknown entry type");
    }
  }
  if (next_offset != manifest.data_bytes) {
    return fmt::format("file sizes sum to {} bytes, the manifest says {}", next_offset,
                       manifest.data_bytes);
  }
  return {};
}

std::vector<std::byte> encode_manifest(const TreeManifest& manifest,
                                       const ManifestLimits& limits) {
  if (const std::string bad = validate_manifest(manifest, limits); !bad.empty()) {
    throw InputError("cannot send this tree: " + bad);
  }
  ByteWriter out;
  out.u32(kManifestMagic).u16(kManifestVersion).u16(0);
  out.u16(static_cast<std::uint16_t>(manifest.top.mode))
      .u64(static_cast<std::uint64_t>(manifest.top.mtime_ns))
      .u32(manifest.top.uid)
      .u32(manifest.top.gid);
  out.u64(manifest.entries.size()).u64(manifest.data_bytes);
  for (const TreeEntry& entry : manifest.entries) {
    out.u8(static_cast<std::uint8_t>(entry.type))
        .u16(static_cast<std::uint16_t>(entry.mode))
        .u64(static_cast<std::uint64_t>(entry.mtime_ns))
        .u32(entry.uid)
        .u32(entry.gid)
        .str(entry.path);
    switch (entry.type) {
      case TreeEntryType::kFile:
        out.u64(entry.size).u64(entry.offset);
        break;
      case TreeEntryType::kSymlink:
        out.str(entry.target);
        break;
      case TreeEntryType::kHardlink:
        out.u32(entry.link_to);
        break;
      case TreeEntryType::kDirectory:
        break;
    }
  }
  return out.take();
}

DecodedManifest decode_manifest(std::span<const std::byte> bytes, const ManifestLimits& limits) {
  DecodedManifest result;
  ByteReader in(bytes);
  if (in.u32() != kManifestMagic || !in.ok()) {
    result.refusal = "not a tree manifest (bad magic)";
    return result;
  }
  if (const std::uint16_t version = in.u16(); version != kManifestVersion) {
    result.refusal = fmt::format("manifest version {} (this imgcast reads {})", version,
                                 kManifestVersion);
    return result;
  }
  if (in.u16() != 0) {
    result.refusal = "unknown manifest flags";
    return result;
  }
  TreeManifest manifest;
  manifest.top.mode = in.u16();
  manifest.top.mtime_ns = static_cast<std::int64_t>(in.u64());
  manifest.top.uid = in.u32();
  manifest.top.gid = in.u32();
  const std::uint64_t count = in.u64();
  manifest.data_bytes = in.u64();
  if (!in.ok()) {
    result.refusal = "manifest header truncated";
    return result;
  }
  // Both bounds before reserve(): the limit, and what the remaining bytes could possibly hold.
  const std::size_t header_bytes = 4 + 2 + 2 + 2 + 8 + 4 + 4 + 8 + 8;
  if (count > limits.max_entries) {
    result.refusal = fmt::format("{} entries (at most {})", count, limits.max_entries);
    return result;
  }
  if (count > (bytes.size() - header_bytes) / kMinEntryBytes) {
    result.refusal = fmt::format("{} entries cannot fit in {} bytes", count, bytes.size());
    return result;
  }
  manifest.entries.reserve(static_cast<std::size_t>(count));
  for (std::uint64_t i = 0; i < count; ++i) {
    TreeEntry entry;
    const std::uint8_t type = in.u8();
    entry.type = static_cast<TreeEntryType>(type);
    entry.mode = in.u16();
    entry.mtime_ns = static_cast<std::int64_t>(in.u64());
    entry.uid = in.u32();
    entry.gid = in.u32();
    entry.path = in.str(limits.max_path_bytes);
    switch (entry.type) {
      case TreeEntryType::kFile:
        entry.size = in.u64();
        entry.offset = in.u64();
        break;
      case TreeEntryType::kSymlink:
        entry.target = in.str(limits.max_target_bytes);
        break;
      case TreeEntryType::kHardlink:
        entry.link_to = in.u32();
        break;
      case TreeEntryType::kDirectory:
        break;
      default:
        result.refusal = fmt::format("entry {}: unknown type {}", i, type);
        return result;
    }
    if (!in.ok()) {
      result.refusal = fmt::format("manifest truncated or over a limit at entry {}", i);
      return result;
    }
    manifest.entries.push_back(std::move(entry));
  }
  if (!in.done()) {
    result.refusal = "bytes after the manifest's last entry";
    return result;
  }
  if (std::string bad = validate_manifest(manifest, limits); !bad.empty()) {
    result.refusal = std::move(bad);
    return result;
  }
  result.manifest = std::move(manifest);
  return result;
}

ImageDigest manifest_digest(std::span<const std::byte> encoded) noexcept {
  ImageHasher hasher;
  hasher.update(encoded);
  return hasher.digest();
}

}  // namespace imgcast::replicator
