// The root's stream reader on real files: the bytes are header, manifest and file data in
// order; each file is opened once; a file changed since the walk fails the read.
#include "replicator/tree/tree_stream.h"

#include <gtest/gtest.h>

#include "replicator/errors.h"
#include "replicator/tree/stream_layout.h"
#include "tests/replicator/tree/tree_fixture.h"

namespace imgcast::replicator {
namespace {

using test::TempDir;
using namespace test_tree;

// The whole stream, read in chunks of `chunk_bytes`.
std::vector<std::byte> read_all(const TreeStream& stream, std::uint32_t chunk_bytes) {
  std::vector<std::byte> out(stream.size());
  for (std::uint64_t offset = 0; offset < out.size(); offset += chunk_bytes) {
    const auto length = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(chunk_bytes, out.size() - offset));
    stream.read({.index = 0, .offset = offset, .length = length},
                std::span(out).subspan(offset, length));
  }
  return out;
}

TEST(TreeStream, YieldsHeaderManifestAndEveryFileOnce) {
  TempDir dir;
  make_sample_tree(dir / "src");
  const TreeStream stream(walk_directory(dir / "src"));
  for (const std::uint32_t chunk : {4096u, 7u, 1u << 20}) {
    const TreeStream fresh(walk_directory(dir / "src"));
    const auto bytes = read_all(fresh, chunk);
    const ReceivedTree tree = parse_tree_stream(bytes);
    EXPECT_EQ(tree.manifest, fresh.tree().manifest);
    EXPECT_EQ(tree.digest, fresh.manifest_digest());
    for (const TreeSourceFile& file : fresh.tree().files) {
      const TreeEntry& entry = tree.manifest.entries[file.entry];
      const auto got = tree.data.subspan(entry.offset, entry.size);
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(got.data()), got.size()),
                read_text(dir / "src" / file.relative))
          << file.relative;
    }
    // Five regular files, one of them empty (never opened); the hardlink is not read again.
    EXPECT_EQ(fresh.files_opened(), 4u) << "chunk " << chunk;
  }
  EXPECT_EQ(stream.cache_key().size(), 32u);
}

TEST(TreeStream, SeveralSourcesIncludingAPlainFile) {
  TempDir dir;
  test::write_random_file(dir / "app.sif", 10'000, 3);
  make_sample_tree(dir / "data");
  const TreeStream stream(walk_sources({dir / "app.sif", dir / "data"}));
  const auto bytes = read_all(stream, 4096);
  const ReceivedTree tree = parse_tree_stream(bytes);
  const auto sif = tree.data.first(10'000);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sif.data()), sif.size()),
            read_text(dir / "app.sif"));
}

TEST(TreeStream, AFileChangedSinceTheWalkFailsTheRead) {
  TempDir dir;
  make_sample_tree(dir / "src");
  {
    const TreeStream stream(walk_directory(dir / "src"));
    write_text(dir / "src/lib/python/site/mod.py", "print('longer now')\n");
    EXPECT_THROW((void)read_all(stream, 1 << 20), TransferError);
  }
  {
    const TreeStream stream(walk_directory(dir / "src"));
    fs::remove(dir / "src/lib/python/site/mod.py");
    fs::create_symlink("/etc/passwd", dir / "src/lib/python/site/mod.py");  // O_NOFOLLOW
    EXPECT_THROW((void)read_all(stream, 1 << 20), TransferError);
  }
  fs::remove(dir / "src/lib/python/site/mod.py");
  write_text(dir / "src/lib/python/site/mod.py", "a regular file again");
  {
    const TreeStream stream(walk_directory(dir / "src"));
    fs::rename(dir / "src/lib/python", dir / "src/lib/moved");
    fs::create_symlink("moved", dir / "src/lib/python");  // a directory swapped for a symlink
    EXPECT_THROW((void)read_all(stream, 1 << 20), TransferError);
  }
}

}  // namespace
}  // namespace imgcast::replicator
