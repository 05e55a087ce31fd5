// The tree stream's framing: header round trip and every way a received stream can lie.
#include "replicator/tree/stream_layout.h"

#include <gtest/gtest.h>

#include "replicator/errors.h"

namespace imgcast::replicator {
namespace {

TreeManifest two_files() {
  TreeManifest m;
  m.entries = {{.type = TreeEntryType::kFile, .path = "a", .size = 3, .offset = 0},
               {.type = TreeEntryType::kFile, .path = "b", .size = 2, .offset = 3}};
  m.data_bytes = 5;
  return m;
}

std::vector<std::byte> stream_of(const TreeManifest& m, std::string_view data) {
  auto out = encode_tree_prefix(m);
  for (const char c : data) out.push_back(static_cast<std::byte>(c));
  return out;
}

TEST(TreeStreamLayout, HeaderRoundTrips) {
  const auto bytes = encode_tree_header({.manifest_bytes = 77, .data_bytes = 1ull << 40});
  ASSERT_EQ(bytes.size(), kTreeHeaderBytes);
  const auto header = decode_tree_header(bytes);
  ASSERT_TRUE(header);
  EXPECT_EQ(header->manifest_bytes, 77u);
  EXPECT_EQ(header->data_bytes, 1ull << 40);
  EXPECT_EQ(header->stream_bytes(), 32u + 77u + (1ull << 40));
  EXPECT_EQ((TreeStreamHeader{UINT64_MAX - 10, 20}.stream_bytes()), 0u);  // would wrap
  for (std::size_t i = 0; i < 16; ++i) {  // magic, version, flags
    auto bad = bytes;
    bad[i] ^= std::byte{1};
    EXPECT_FALSE(decode_tree_header(bad)) << i;
  }
  EXPECT_FALSE(decode_tree_header(std::span(bytes).first(31)));
}

TEST(TreeStreamLayout, ParsesAWellFormedStream) {
  const auto stream = stream_of(two_files(), "abcde");
  const ReceivedTree tree = parse_tree_stream(stream);
  EXPECT_EQ(tree.manifest, two_files());
  ASSERT_EQ(tree.data.size(), 5u);
  EXPECT_EQ(static_cast<char>(tree.data[3]), 'd');
  EXPECT_EQ(tree.digest, manifest_digest(encode_manifest(two_files())));
}

TEST(TreeStreamLayout, RefusesStreamsThatLie) {
  const auto good = stream_of(two_files(), "abcde");
  EXPECT_THROW((void)parse_tree_stream(std::span(good).first(good.size() - 1)), SecurityError);
  auto longer = good;
  longer.push_back(std::byte{0});
  EXPECT_THROW((void)parse_tree_stream(longer), SecurityError);
  EXPECT_THROW((void)parse_tree_stream(std::span(good).first(10)), SecurityError);
  // Header and manifest disagree on the data size (the stream length still adds up).
  auto disagree = good;
  disagree[24] = std::byte{6};  // header data_bytes 5 -> 6
  disagree.push_back(std::byte{'f'});
  EXPECT_THROW((void)parse_tree_stream(disagree), SecurityError);
  // A hostile manifest inside a consistent frame.
  TreeManifest evil;
  evil.entries = {{.type = TreeEntryType::kDirectory, .path = "a"}};
  auto hostile = stream_of(evil, "");
  hostile[kTreeHeaderBytes + 42 + 23] = std::byte{'/'};  // "a" -> "/" : path byte of entry 0
  try {
    (void)parse_tree_stream(hostile);
    ADD_FAILURE() << "accepted";
  } catch (const SecurityError& error) {
    EXPECT_NE(std::string(error.what()).find("manifest"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace imgcast::replicator
