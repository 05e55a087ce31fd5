// SourceReader on real files: its thread reads in order, never past the limit it was allowed,
// hands over the same digests a single pass gives, lets the caller read a chunk itself, and
// reports a source that shrinks under it.
#include "replicator/image/source_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "replicator/errors.h"
#include "replicator/image/image_source.h"
#include "replicator/unique_fd.h"
#include "tests/support/process.h"

namespace imgcast::replicator {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using test::TempDir;

std::vector<std::byte> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), {}};
  const auto* begin = reinterpret_cast<const std::byte*>(bytes.data());
  return {begin, begin + bytes.size()};
}

// Waits until `done` holds, for at most 10 s.
template <typename Done>
bool eventually(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

struct Fixture {
  explicit Fixture(std::uint64_t bytes, std::uint32_t chunk_bytes)
      : plan(bytes, chunk_bytes), into(bytes), digests(plan.count()) {
    test::write_random_file(dir / "img", bytes, 7);
  }
  TempDir dir;
  ChunkPlan plan;
  std::vector<std::byte> into;
  std::vector<std::uint64_t> digests;
  ImageHasher hasher;
};

// The reader's image digest and chunk digests are those of one pass over `file`.
void expect_digests_of_one_pass(const Fixture& f, const std::vector<std::byte>& file) {
  ImageHasher whole;
  whole.update(file);
  EXPECT_EQ(f.hasher.digest(), whole.digest());
  for (std::uint32_t i = 0; i < f.plan.count(); ++i) {
    const Chunk c = f.plan.at(i);
    EXPECT_EQ(f.digests[i], chunk_digest(std::span(file).subspan(c.offset, c.length))) << i;
  }
}

TEST(SourceReader, ReadsEveryChunkInOrderWithTheDigestsOfOnePass) {
  Fixture f(10 * 4096 + 123, 4096);
  const ImageSource source = ImageSource::open(f.dir / "img");
  {
    SourceReader reader(source, f.plan, f.into, f.digests, f.hasher);
    reader.allow(f.plan.count());
    ASSERT_TRUE(eventually([&] { return reader.ready() == f.plan.count(); }));
    EXPECT_FALSE(reader.failed());
  }
  const std::vector<std::byte> file = read_all(f.dir / "img");
  EXPECT_EQ(f.into, file);
  expect_digests_of_one_pass(f, file);
}

// The root's way with an image file: each chunk copied into the staging file by the kernel and
// hashed through the file's mapping, with the digests a single pass over the source gives.
TEST(SourceReader, ThroughTheFileTheMappingHoldsTheSourceAndTheDigestsMatch) {
  Fixture f(9 * 65536 + 4000, 65536);
  const ImageSource source = ImageSource::open(f.dir / "img");
  const UniqueFd copy(::open((f.dir / "copy").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(copy.valid());
  ASSERT_EQ(::ftruncate(copy.get(), static_cast<off_t>(source.size())), 0);
  void* map = ::mmap(nullptr, source.size(), PROT_READ | PROT_WRITE, MAP_SHARED, copy.get(), 0);
  ASSERT_NE(map, MAP_FAILED);
  const std::span mapping(static_cast<std::byte*>(map), source.size());
  {
    SourceReader reader(source, f.plan, mapping, f.digests, f.hasher, 1, copy.get());
    reader.allow(4);
    ASSERT_TRUE(eventually([&] { return reader.ready() == 4; }));
    reader.allow(f.plan.count());
    reader.read_here(f.plan.count() - 1);  // the send loop's own read takes the same path
    ASSERT_TRUE(eventually([&] { return reader.ready() == f.plan.count(); }));
    EXPECT_FALSE(reader.failed());
  }
  const std::vector<std::byte> file = read_all(f.dir / "img");
  EXPECT_TRUE(std::equal(mapping.begin(), mapping.end(), file.begin(), file.end()));
  EXPECT_EQ(read_all(f.dir / "copy"), file);
  expect_digests_of_one_pass(f, file);
  ::munmap(map, source.size());
}

TEST(SourceReader, NeverReadsPastTheAllowedLimit) {
  Fixture f(64 * 4096, 4096);
  const ImageSource source = ImageSource::open(f.dir / "img");
  SourceReader reader(source, f.plan, f.into, f.digests, f.hasher);
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(reader.ready(), 0u);  // nothing allowed yet
  reader.allow(5);
  ASSERT_TRUE(eventually([&] { return reader.ready() == 5; }));
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(reader.ready(), 5u);
  reader.allow(3);      // limits only grow
  reader.read_here(5);  // chunk 5 is past the limit: not even the caller reads it
  EXPECT_EQ(reader.ready(), 5u);
  reader.allow(9);
  ASSERT_TRUE(eventually([&] { return reader.ready() == 9; }));
  EXPECT_EQ(reader.ready(), 9u);
}

TEST(SourceReader, AtTheLimitItWaitsForABatchOrTheEnd) {
  Fixture f(20 * 4096, 4096);
  const ImageSource source = ImageSource::open(f.dir / "img");
  SourceReader reader(source, f.plan, f.into, f.digests, f.hasher, /*resume_batch=*/4);
  reader.allow(5);
  ASSERT_TRUE(eventually([&] { return reader.ready() == 5; }));
  reader.allow(7);  // less than a batch past where it stopped: it sleeps on
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(reader.ready(), 5u);
  reader.allow(9);  // a batch on
  ASSERT_TRUE(eventually([&] { return reader.ready() == 9; }));
  reader.allow(18);
  ASSERT_TRUE(eventually([&] { return reader.ready() == 18; }));
  reader.allow(20);  // the end is less than a batch away: it is read all the same
  ASSERT_TRUE(eventually([&] { return reader.ready() == 20; }));
  EXPECT_EQ(f.into, read_all(f.dir / "img"));
}

TEST(SourceReader, TheCallerReadsAChunkItselfWhenItIsAllowed) {
  Fixture f(64 * 4096, 4096);
  const ImageSource source = ImageSource::open(f.dir / "img");
  SourceReader reader(source, f.plan, f.into, f.digests, f.hasher);
  reader.allow(f.plan.count());
  // Whoever holds the lock reads the next chunk: between the caller and the thread, every chunk
  // is read once, in order.
  for (std::uint32_t needed = 0; needed < f.plan.count(); needed = reader.ready()) {
    reader.read_here(needed);
  }
  EXPECT_EQ(reader.ready(), f.plan.count());
  EXPECT_EQ(f.into, read_all(f.dir / "img"));
  EXPECT_LE(reader.read_by_thread(), f.plan.count());
  ImageHasher whole;
  whole.update(read_all(f.dir / "img"));
  EXPECT_EQ(f.hasher.digest(), whole.digest());
}

TEST(SourceReader, ASourceThatShrinksFailsWithTheReasonAndWakesTheWaiter) {
  Fixture f(64 * 4096, 4096);
  const ImageSource source = ImageSource::open(f.dir / "img");
  ASSERT_EQ(::truncate((f.dir / "img").c_str(), 10 * 4096 + 5), 0);
  SourceReader reader(source, f.plan, f.into, f.digests, f.hasher);
  reader.allow(f.plan.count());
  ASSERT_TRUE(eventually([&] { return reader.failed(); }));
  EXPECT_EQ(reader.ready(), 10u);  // the chunks before the new end
  EXPECT_NE(reader.error().find("shrank while reading"), std::string::npos) << reader.error();
  EXPECT_NE(reader.error().find((f.dir / "img").string()), std::string::npos) << reader.error();
  // The send loop, asleep in poll, is woken to see it.
  pollfd wake{reader.wake_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&wake, 1, 1000), 1);
  reader.drain();
  EXPECT_EQ(::poll(&wake, 1, 0), 0);
}

TEST(SourceReader, StopsAtOnceWhenDestroyedWhileWaitingForALimit) {
  Fixture f(64 * 4096, 4096);
  const ImageSource source = ImageSource::open(f.dir / "img");
  const auto start = std::chrono::steady_clock::now();
  {
    SourceReader reader(source, f.plan, f.into, f.digests, f.hasher);
    reader.allow(2);
    ASSERT_TRUE(eventually([&] { return reader.ready() == 2; }));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace imgcast::replicator
