// ImageSource on real files: reading chunks, and every way a source can be wrong.
#include "replicator/image/image_source.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <future>

#include "replicator/errors.h"
#include "replicator/unique_fd.h"
#include "tests/support/process.h"

namespace imgcast::replicator {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string read_through(const ImageSource& source, std::uint32_t chunk_bytes) {
  const ChunkPlan plan(source.size(), chunk_bytes);
  std::string got(source.size(), '\0');
  for (std::uint32_t i = 0; i < plan.count(); ++i) {
    const Chunk c = plan.at(i);
    source.read(c, std::as_writable_bytes(std::span(got)).subspan(c.offset, c.length));
  }
  return got;
}

void expect_input_error(const fs::path& path, const std::string& words) {
  try {
    (void)ImageSource::open(path);
    ADD_FAILURE() << path << " opened";
  } catch (const InputError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find(path.string()), std::string::npos) << what;
    EXPECT_NE(what.find(words), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(ImageSource, ReadsChunksIncludingTheLastPartialOne) {
  TempDir dir;
  test::write_random_file(dir / "img", 10000, 4);
  const ImageSource source = ImageSource::open(dir / "img");
  ASSERT_EQ(source.size(), 10000u);
  EXPECT_EQ(source.path(), dir / "img");
  EXPECT_EQ(read_through(source, 4096), read_all(dir / "img"));
}

TEST(ImageSource, ReadsIntoALargerBufferAndOutOfOrder) {
  TempDir dir;
  test::write_random_file(dir / "img", 3 * 4096 + 1, 5);
  const std::string expected = read_all(dir / "img");
  const ImageSource source = ImageSource::open(dir / "img");
  const ChunkPlan plan(source.size(), 4096);
  std::vector<std::byte> buffer(8192, std::byte{0x5A});
  for (std::uint32_t i : {3u, 0u, 2u, 1u}) {
    const Chunk c = plan.at(i);
    source.read(c, buffer);
    EXPECT_EQ(std::memcmp(buffer.data(), expected.data() + c.offset, c.length), 0) << i;
    EXPECT_EQ(buffer[c.length], std::byte{0x5A});  // nothing past chunk.length is written
  }
}

TEST(ImageSource, AnEmptyFileHasNoChunks) {
  TempDir dir;
  std::ofstream(dir / "empty");
  const ImageSource source = ImageSource::open(dir / "empty");
  EXPECT_EQ(source.size(), 0u);
  EXPECT_EQ(ChunkPlan(source.size(), 4096).count(), 0u);
}

TEST(ImageSource, BadSourcesAreInputErrorsNamingThePath) {
  TempDir dir;
  test::write_random_file(dir / "file", 10);
  expect_input_error(dir / "missing.sif", "does not exist: check the path");
  expect_input_error(dir.path(), "is a directory: name the image file");
  // Root bypasses permission bits, so reach the "a path component is wrong" branch instead.
  expect_input_error(dir / "file" / "child", "not a directory");
  expect_input_error("/dev/null", "not a regular file or block device");
}

TEST(ImageSource, AnUnreadableFileIsAnInputError) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "root reads files whatever their mode (the e2e suite covers this as nobody)";
  }
  TempDir dir;
  test::write_random_file(dir / "secret", 10);
  ::chmod((dir / "secret").c_str(), 0);
  expect_input_error(dir / "secret", "is not readable: check its permissions");
}

TEST(ImageSource, AFifoIsRejectedWithoutWaitingForAWriter) {
  TempDir dir;
  const fs::path fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto opening = std::async(std::launch::async, [&] { expect_input_error(fifo, "regular file"); });
  if (opening.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    ADD_FAILURE() << "open() blocked on a FIFO";
    // Release the blocked open so the test can end.
    const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (writer >= 0)
      ::close(writer);
  }
  opening.get();
}

TEST(ImageSource, ReadsABlockDevice) {
  TempDir dir;
  test::write_random_file(dir / "disk", 1 << 20, 6);
  const test::ProcessResult attach =
      test::run({"losetup", "--find", "--show", "--read-only", (dir / "disk").string()},
                std::chrono::seconds(20));
  if (attach.exit_code != 0) {
    GTEST_SKIP() << "no loop device here (needs root): " << attach.err;
  }
  std::string device = attach.out;
  while (!device.empty() && device.back() == '\n')
    device.pop_back();
  struct Detach {
    std::string device;
    ~Detach() { (void)test::run({"losetup", "--detach", device}, std::chrono::seconds(20)); }
  } detach{device};
  const ImageSource source = ImageSource::open(device);
  EXPECT_EQ(source.size(), 1u << 20);  // BLKGETSIZE64: fstat reports 0 for a block device
  EXPECT_EQ(read_through(source, 64 << 10), read_all(dir / "disk"));
}

TEST(ImageSource, ASourceThatShrinksIsATransferError) {
  TempDir dir;
  test::write_random_file(dir / "img", 8192);
  const ImageSource source = ImageSource::open(dir / "img");
  ASSERT_EQ(::truncate((dir / "img").c_str(), 5000), 0);
  std::vector<std::byte> into(4096);
  EXPECT_NO_THROW(source.read(ChunkPlan(8192, 4096).at(0), into));
  try {
    source.read(ChunkPlan(8192, 4096).at(1), into);
    ADD_FAILURE() << "read past the new end";
  } catch (const TransferError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("shrank while reading"), std::string::npos) << what;
    EXPECT_NE(what.find((dir / "img").string()), std::string::npos) << what;
  }
}

// The root's copy made by the kernel: each chunk lands at its own offset of the staging file,
// in any order, byte for byte, and a source that shrinks says so as read() does.
TEST(ImageSource, CopiesChunksIntoAFileAtTheirOffsets) {
  TempDir dir;
  test::write_random_file(dir / "img", 3 * 65536 + 777, 11);
  const ImageSource source = ImageSource::open(dir / "img");
  ASSERT_TRUE(source.copies_in_kernel());
  const UniqueFd copy(::open((dir / "copy").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(copy.valid());
  ASSERT_EQ(::ftruncate(copy.get(), static_cast<off_t>(source.size())), 0);
  const ChunkPlan plan(source.size(), 65536);
  for (const std::uint32_t index : {3u, 0u, 2u, 1u}) {
    ASSERT_TRUE(source.copy_to_file(plan.at(index), copy.get())) << index;
  }
  EXPECT_EQ(read_all(dir / "copy"), read_all(dir / "img"));
  ASSERT_EQ(::truncate((dir / "img").c_str(), 65536 + 10), 0);
  try {
    (void)source.copy_to_file(plan.at(1), copy.get());
    ADD_FAILURE() << "copied past the new end";
  } catch (const TransferError& error) {
    EXPECT_NE(std::string(error.what()).find("shrank while reading"), std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace imgcast::replicator
