// PageRunner on real filesystems: on tmpfs it allocates a bounded window ahead of the data (and
// says so in one line when the tmpfs fills up under it); on a disk it writes back behind the data
// and the pages stay cached. StagedImage's reservation itself costs nothing per byte on tmpfs.
#include "replicator/image/page_runner.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "replicator/image/staged_image.h"
#include "tests/replicator/image/resident.h"
#include "tests/replicator/image/small_mount.h"
#include "tests/support/process.h"

namespace imgcast::replicator {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using Clock = std::chrono::steady_clock;

std::uint64_t allocated_bytes(const fs::path& dir) {
  std::uint64_t total = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) == 0)
      total += static_cast<std::uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

// Waits until `done()` holds, for at most 10 s.
template <typename F>
bool eventually(F done) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (Clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

TEST(PageRunner, OnTmpfsTheReservationAllocatesNothingAndTheRunnerStaysAWindowAhead) {
  TempDir dir;
  SmallMount mount(dir / "shm", "size=512m");
  if (!mount.mounted())
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << mount.error();
  constexpr std::uint64_t kSize = 256u << 20;
  StagedImage image = StagedImage::create(dir / "shm" / "app.sif", kSize, "j");
  EXPECT_EQ(image.space(), StagedImage::Space::kChecked);
  EXPECT_TRUE(image.in_memory());
  EXPECT_EQ(allocated_bytes(dir / "shm"), 0u) << "setup allocated pages of the image";
  {
    PageRunner pages(image);
    ASSERT_TRUE(eventually([&] { return pages.ahead() >= PageRunner::kAhead; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(pages.ahead(), PageRunner::kAhead) << "ran further ahead than its window";
    EXPECT_EQ(allocated_bytes(dir / "shm"), PageRunner::kAhead);
    // The data moves on: so does the window, and all of it is there by the end.
    std::memset(image.bytes().data(), 'x', 100u << 20);
    pages.advance(100u << 20);
    ASSERT_TRUE(eventually([&] { return pages.ahead() >= (100u << 20) + PageRunner::kAhead; }));
    pages.advance(kSize);
    ASSERT_TRUE(eventually([&] { return pages.ahead() == kSize; }));
    EXPECT_FALSE(pages.failure());
  }
  EXPECT_EQ(allocated_bytes(dir / "shm"), kSize);
  EXPECT_EQ(static_cast<char>(image.bytes()[(100u << 20) - 1]), 'x');  // data untouched
  EXPECT_EQ(static_cast<char>(image.bytes()[100u << 20]), 0);
}

// The data comes through the file (the root's kernel copy, a TCP receive spliced into it): the
// write allocates its own pages, so on tmpfs the runner neither allocates (its fallocate would
// hold the file's lock against the writer) nor maps ahead; through the mapping it does both.
TEST(PageRunner, DataThroughTheFileIsNeitherAllocatedNorMappedAhead) {
  TempDir dir;
  SmallMount mount(dir / "shm", "size=256m");
  if (!mount.mounted())
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << mount.error();
  constexpr std::uint64_t kSize = 128u << 20;
  StagedImage image = StagedImage::create(dir / "shm" / "app.sif", kSize, "j");
  ASSERT_EQ(image.space(), StagedImage::Space::kChecked);
  {
    PageRunner pages(image, PageRunner::Arrival::kThroughFile);
    const std::vector<char> data(1u << 20, 'y');
    ASSERT_EQ(::pwrite(image.file_descriptor(), data.data(), data.size(), 0),
              static_cast<ssize_t>(data.size()));
    pages.advance(data.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(allocated_bytes(dir / "shm"), data.size()) << "allocated ahead of the writes";
    EXPECT_EQ(resident_kib(image.bytes().data()), 0) << "mapped ahead of data that never uses it";
    EXPECT_FALSE(pages.failure());
  }
  EXPECT_EQ(static_cast<char>(image.bytes()[(1u << 20) - 1]), 'y');  // the write shows through
  // Through the mapping (a receive into it), the same window is allocated and mapped.
  StagedImage received = StagedImage::create(dir / "shm" / "other.sif", kSize / 2, "k");
  PageRunner pages(received);
  ASSERT_TRUE(eventually([&] { return pages.ahead() >= PageRunner::kAhead; }));
  EXPECT_GE(resident_kib(received.bytes().data()), static_cast<long>(PageRunner::kAhead >> 10));
}

TEST(PageRunner, ATmpfsThatFillsUpUnderTheTransferIsOneNoSpaceLine) {
  TempDir dir;
  SmallMount mount(dir / "shm", "size=64m");
  if (!mount.mounted())
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << mount.error();
  StagedImage image = StagedImage::create(dir / "shm" / "app.sif", 48u << 20, "j");
  // Another process takes 40 MiB after our check passed.
  {
    std::ofstream other(dir / "shm" / "other", std::ios::binary);
    const std::vector<char> block(1 << 20, 'o');
    for (int i = 0; i < 40; ++i)
      other.write(block.data(), static_cast<std::streamsize>(block.size()));
  }
  PageRunner pages(image);
  ASSERT_TRUE(eventually([&] { return pages.failure().has_value(); }));
  const std::string why = *pages.failure();
  EXPECT_NE(why.find("no space left for the image in " + (dir / "shm").string()), std::string::npos)
      << why;
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  EXPECT_LT(pages.ahead(), 48u << 20);
}

TEST(PageRunner, OnADiskItWritesBackBehindTheDataAndThePagesStayCached) {
  TempDir dir("/var/tmp");
  constexpr std::uint64_t kSize = 96u << 20;
  StagedImage image = StagedImage::create(dir / "app.sif", kSize, "j");
  if (image.in_memory())
    GTEST_SKIP() << dir.path() << " is in memory: nothing to write back";
  EXPECT_EQ(image.space(), StagedImage::Space::kReserved);  // fallocate on a disk
  {
    PageRunner pages(image);
    for (std::uint64_t at = 0; at < kSize; at += 4u << 20) {
      std::memset(image.bytes().data() + at, static_cast<int>('a' + at % 26), 4u << 20);
      pages.advance(at + (4u << 20));
    }
    EXPECT_FALSE(pages.failure());
  }  // joined: every step's write-back was started
  image.commit();
  // Whoever reads the image next finds it in the page cache.
  std::vector<unsigned char> resident((kSize + 4095) / 4096);
  ASSERT_EQ(::mincore(image.bytes().data(), kSize, resident.data()), 0);
  std::size_t cached = 0;
  for (unsigned char page : resident)
    cached += page & 1;
  EXPECT_EQ(cached, resident.size());
  std::ifstream in(dir / "app.sif", std::ios::binary);
  in.seekg(static_cast<std::streamoff>(kSize - 1));
  EXPECT_EQ(in.get(), 'a' + ((kSize - (4u << 20)) % 26));
}

}  // namespace
}  // namespace imgcast::replicator
