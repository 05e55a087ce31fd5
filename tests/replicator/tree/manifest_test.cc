// The tree manifest's codec: round trips, every limit, and hostile manifests each refused with
// a reason (never a crash, never a partial manifest).
#include "replicator/tree/manifest.h"

#include <gtest/gtest.h>

#include "replicator/errors.h"
#include "replicator/protocol/byte_codec.h"

namespace imgcast::replicator {
namespace {

TreeEntry dir(std::string path, std::uint32_t mode = 0755) {
  return {.type = TreeEntryType::kDirectory, .path = std::move(path), .mode = mode};
}
TreeEntry file(std::string path, std::uint64_t offset, std::uint64_t size) {
  return {.type = TreeEntryType::kFile, .path = std::move(path), .size = size, .offset = offset};
}
TreeEntry symlink(std::string path, std::string target) {
  return {.type = TreeEntryType::kSymlink, .path = std::move(path), .mode = 0777,
          .target = std::move(target)};
}
TreeEntry hardlink(std::string path, std::uint32_t to) {
  return {.type = TreeEntryType::kHardlink, .path = std::move(path), .link_to = to};
}

TreeManifest sample() {
  TreeManifest m;
  m.top = {.mode = 0750, .mtime_ns = 1'700'000'000'123'456'789, .uid = 1000, .gid = 100};
  m.entries = {dir("bin"),
               file("bin/python", 0, 100),
               symlink("bin/python3", "python"),
               dir("lib", 01777),
               file("lib/a\n\xff.so", 100, 0),
               file("lib/b.so", 100, 50),
               hardlink("lib/c.so", 5),
               symlink("abs", "/etc/passwd"),
               symlink("dangling", "../../nowhere")};
  m.entries[1].mode = 04755;
  m.entries[1].mtime_ns = -5;  // before 1970
  m.entries[1].uid = 12;
  m.entries[1].gid = 34;
  m.data_bytes = 150;
  return m;
}

std::string refusal(const TreeManifest& m, const ManifestLimits& limits = {}) {
  return validate_manifest(m, limits);
}

TEST(TreeManifest, RoundTripsExactly) {
  const TreeManifest m = sample();
  const auto bytes = encode_manifest(m);
  const DecodedManifest decoded = decode_manifest(bytes);
  ASSERT_TRUE(decoded.manifest) << decoded.refusal;
  EXPECT_EQ(*decoded.manifest, m);
  EXPECT_EQ(encode_manifest(*decoded.manifest), bytes);
  EXPECT_EQ(manifest_digest(bytes), manifest_digest(encode_manifest(*decoded.manifest)));
}

TEST(TreeManifest, EmptyTreeRoundTrips) {
  const TreeManifest m;
  const DecodedManifest decoded = decode_manifest(encode_manifest(m));
  ASSERT_TRUE(decoded.manifest) << decoded.refusal;
  EXPECT_TRUE(decoded.manifest->entries.empty());
}

TEST(TreeManifest, DigestChangesWithAnyField) {
  TreeManifest other = sample();
  other.entries[1].mtime_ns += 1;
  EXPECT_NE(manifest_digest(encode_manifest(sample())), manifest_digest(encode_manifest(other)));
}

TEST(TreeManifest, EncodeRefusesWhatDecodeWould) {
  TreeManifest m = sample();
  m.entries[0].path = "/bin";
  EXPECT_THROW((void)encode_manifest(m), InputError);
}

TEST(TreeManifest, RefusesBadPaths) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/abs", "absolute"},        {"..", "'..'"},           {"bin/../etc", "'..'"},
      {".", "'.'"},                {"bin/./x", "'.'"},       {"", "empty path"},
      {"bin//x", "empty path component"},                    {"bin/", "empty path component"},
      {std::string("a\0b", 3), "NUL"},
  };
  for (const auto& [path, words] : cases) {
    TreeManifest m;
    m.entries = {dir("bin"), dir(path)};
    const std::string why = refusal(m);
    EXPECT_NE(why.find(words), std::string::npos) << "path " << path << ": " << why;
  }
}

TEST(TreeManifest, RefusesDuplicatesAndMissingParents) {
  TreeManifest m;
  m.entries = {dir("a"), dir("a")};
  EXPECT_NE(refusal(m).find("duplicate"), std::string::npos);
  m.entries = {dir("a"), file("a", 0, 0)};
  EXPECT_NE(refusal(m).find("duplicate"), std::string::npos);
  m.entries = {dir("a/b")};
  EXPECT_NE(refusal(m).find("not an earlier entry"), std::string::npos);
  m.entries = {dir("a/b"), dir("a")};  // a parent after its child
  EXPECT_NE(refusal(m).find("not an earlier entry"), std::string::npos);
}

TEST(TreeManifest, RefusesAnythingUnderASymlinkOrFile) {
  TreeManifest m;
  m.entries = {symlink("evil", "/etc"), file("evil/passwd", 0, 0)};
  EXPECT_NE(refusal(m).find("parent is not a directory"), std::string::npos);
  m.entries = {symlink("evil", "/etc"), dir("evil/cron.d")};
  EXPECT_NE(refusal(m).find("parent is not a directory"), std::string::npos);
  m.entries = {file("f", 0, 0), file("f/g", 0, 0)};
  EXPECT_NE(refusal(m).find("parent is not a directory"), std::string::npos);
  m.entries = {file("f", 0, 0), hardlink("h", 0), file("h/g", 0, 0)};
  EXPECT_NE(refusal(m).find("parent is not a directory"), std::string::npos);
}

TEST(TreeManifest, RefusesBadHardlinks) {
  TreeManifest m;
  m.entries = {hardlink("h", 1), file("f", 0, 0)};
  EXPECT_NE(refusal(m).find("later"), std::string::npos);
  m.entries = {hardlink("h", 0)};
  EXPECT_NE(refusal(m).find("later"), std::string::npos);  // to itself
  m.entries = {dir("d"), hardlink("h", 0)};
  EXPECT_NE(refusal(m).find("not a regular file"), std::string::npos);
  m.entries = {symlink("s", "x"), hardlink("h", 0)};
  EXPECT_NE(refusal(m).find("not a regular file"), std::string::npos);
  m.entries = {file("f", 0, 0), hardlink("h", 0), hardlink("i", 1)};  // a link to a link
  EXPECT_NE(refusal(m).find("not a regular file"), std::string::npos);
}

TEST(TreeManifest, RefusesInconsistentData) {
  TreeManifest m;
  m.data_bytes = 20;
  m.entries = {file("a", 0, 10), file("b", 5, 15)};  // overlap
  EXPECT_NE(refusal(m).find("where 10 was due"), std::string::npos);
  m.entries = {file("a", 0, 10), file("b", 12, 8)};  // a gap
  EXPECT_NE(refusal(m).find("where 10 was due"), std::string::npos);
  m.entries = {file("a", 0, 10), file("b", 10, UINT64_MAX - 5)};  // the sum would wrap
  EXPECT_NE(refusal(m).find("past the manifest's total"), std::string::npos);
  m.entries = {file("a", 0, 10)};  // less than the total
  EXPECT_NE(refusal(m).find("sum to 10"), std::string::npos);
  m.entries = {dir("d")};
  m.entries[0].size = 3;  // a size on a directory
  m.data_bytes = 0;
  EXPECT_NE(refusal(m).find("does not use"), std::string::npos);
}

TEST(TreeManifest, RefusesModesAndTargets) {
  TreeManifest m;
  m.entries = {dir("d", 0170755)};  // file-type bits
  EXPECT_NE(refusal(m).find("non-permission"), std::string::npos);
  m.entries = {symlink("s", "")};
  EXPECT_NE(refusal(m).find("empty symlink"), std::string::npos);
  m.entries = {symlink("s", std::string("a\0b", 3))};
  EXPECT_NE(refusal(m).find("NUL"), std::string::npos);
  m.entries.clear();
  m.top.mode = 010000;
  EXPECT_NE(refusal(m).find("top"), std::string::npos);
}

TEST(TreeManifest, EveryLimit) {
  const TreeManifest m = sample();
  const auto bytes = encode_manifest(m);
  const auto refused = [&](ManifestLimits limits, const std::string& words) {
    const DecodedManifest decoded = decode_manifest(bytes, limits);
    EXPECT_FALSE(decoded.manifest) << words;
    EXPECT_NE(decoded.refusal.find(words), std::string::npos) << decoded.refusal;
    EXPECT_THROW((void)encode_manifest(m, limits), InputError);
  };
  refused({.max_entries = 8}, "entries");
  refused({.max_path_bytes = 10}, "");  // "lib/a\n\xff.so" and longer: the reader's bound
  refused({.max_name_bytes = 5}, "a name of");
  refused({.max_target_bytes = 10}, "");
  refused({.max_depth = 1}, "deeper than 1");
  refused({.max_data_bytes = 149}, "bytes of file data");
  // Exactly at every limit passes.
  const ManifestLimits tight{.max_entries = 9, .max_path_bytes = 11, .max_name_bytes = 9,
                             .max_target_bytes = 13, .max_depth = 2, .max_data_bytes = 150};
  EXPECT_TRUE(decode_manifest(bytes, tight).manifest) << decode_manifest(bytes, tight).refusal;
}

TEST(TreeManifest, AbsurdCountInATinyBufferIsRefusedBeforeAllocating) {
  ByteWriter out;
  out.u32(kManifestMagic).u16(kManifestVersion).u16(0);
  out.u16(0755).u64(0).u32(0).u32(0);
  out.u64(UINT64_MAX / 2).u64(0);  // "nine quintillion entries" in 40 bytes
  const DecodedManifest huge = decode_manifest(out.bytes(), {.max_entries = UINT64_MAX});
  EXPECT_FALSE(huge.manifest);
  EXPECT_NE(huge.refusal.find("cannot fit"), std::string::npos) << huge.refusal;
  EXPECT_NE(decode_manifest(out.bytes()).refusal.find("at most"), std::string::npos);
}

TEST(TreeManifest, TruncatedAtEveryByteIsRefused) {
  const auto bytes = encode_manifest(sample());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const DecodedManifest decoded = decode_manifest(std::span(bytes).first(n));
    EXPECT_FALSE(decoded.manifest) << "accepted the first " << n << " bytes";
    EXPECT_FALSE(decoded.refusal.empty());
  }
  auto longer = bytes;
  longer.push_back(std::byte{0});
  EXPECT_NE(decode_manifest(longer).refusal.find("after"), std::string::npos);
}

TEST(TreeManifest, RefusesBadMagicVersionFlagsAndType) {
  auto bytes = encode_manifest(sample());
  auto bad = bytes;
  bad[0] = std::byte{'X'};
  EXPECT_NE(decode_manifest(bad).refusal.find("magic"), std::string::npos);
  bad = bytes;
  bad[4] = std::byte{2};
  EXPECT_NE(decode_manifest(bad).refusal.find("version"), std::string::npos);
  bad = bytes;
  bad[6] = std::byte{1};
  EXPECT_NE(decode_manifest(bad).refusal.find("flags"), std::string::npos);
  bad = bytes;
  bad[42] = std::byte{9};  // the first entry's type byte
  EXPECT_NE(decode_manifest(bad).refusal.find("unknown type"), std::string::npos);
}

TEST(TreeManifest, EveryFlippedByteIsRefusedOrReencodesExactly) {
  // A weak fuzz in the unit tests: no decoded manifest may differ from its input bytes.
  const auto bytes = encode_manifest(sample());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (const unsigned char x : {0x01, 0x80, 0xff}) {
      auto mutated = bytes;
      mutated[i] ^= std::byte{x};
      const DecodedManifest decoded = decode_manifest(mutated);
      if (decoded.manifest) {
        EXPECT_EQ(encode_manifest(*decoded.manifest), mutated) << "byte " << i;
      } else {
        EXPECT_FALSE(decoded.refusal.empty());
      }
    }
  }
}

}  // namespace
}  // namespace imgcast::replicator
