// place_tree_as_it_arrives() with the stream fed by hand, as a node's event loop feeds it: each
// file is written once its bytes are checked (not before), nothing is placed at DST before the
// whole stream is confirmed, and a fail() removes what was built.
#include "replicator/session/tree_placement.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <future>
#include <thread>

#include "replicator/errors.h"
#include "replicator/tree/tree_stream.h"
#include "replicator/tree/tree_walk.h"
#include "tests/replicator/image/memory_cgroup.h"
#include "tests/replicator/image/small_mount.h"
#include "tests/replicator/tree/tree_fixture.h"
#include "tests/support/process.h"

namespace imgcast::replicator {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class TreeAsItArrives : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "src");
    test::write_random_file(dir_ / "src/a", 200'000, 1);
    test::write_random_file(dir_ / "src/b", 200'000, 2);
    const TreeStream tree(walk_directory(dir_ / "src"));
    stream_.resize(tree.size());
    tree.read({.offset = 0, .length = static_cast<std::uint32_t>(stream_.size())}, stream_);
    staged_.emplace(stage_tree_stream(dst_, stream_.size(), "job1", false));
    placing_ = std::async(std::launch::async, [this] {
      return place_tree_as_it_arrives(*staged_, dst_, "job1", false, "", arriving_);
    });
  }
  void TearDown() override {
    arriving_.fail();  // a test that stopped early must not leave the thread waiting
    if (placing_.valid())
      placing_.wait();
  }

  // Lands the stream's bytes [0, end) and says so, as the loop does chunk by chunk.
  void arrive(std::size_t end) {
    std::memcpy(staged_->bytes().data(), stream_.data(), end);
    arriving_.verified(end);
  }
  // The staging tree's entry `name`, once it exists whole (within 5 s).
  fs::path staged_entry(const std::string& name, std::uintmax_t size) const {
    for (auto until = std::chrono::steady_clock::now() + 5s;
         std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(2ms)) {
      for (const auto& entry : fs::directory_iterator(dir_.path())) {
        const fs::path path = entry.path() / name;
        std::error_code ec;
        if (entry.path().filename().string().rfind(".copy.imgcast-job1", 0) == 0 &&
            fs::file_size(path, ec) == size && !ec) {
          return path;
        }
      }
    }
    return {};
  }
  std::size_t data_start() const { return stream_.size() - 400'000; }

  test::TempDir dir_;
  fs::path dst_ = dir_ / "copy";
  std::vector<std::byte> stream_;
  std::optional<StagedImage> staged_;
  StreamProgress arriving_;
  std::future<TreeCounts> placing_;
};

TEST_F(TreeAsItArrives, EachFileIsWrittenOnceItsBytesAreThereAndTheTreePlacedOnceConfirmed) {
  arrive(data_start() + 200'000);  // header, manifest and the first file
  EXPECT_FALSE(staged_entry("a", 200'000).empty()) << "the first file was not written";
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(fs::exists(staged_entry("a", 200'000).parent_path() / "b"))
      << "the second file was created before its bytes came";
  arrive(stream_.size());
  EXPECT_FALSE(staged_entry("b", 200'000).empty());
  EXPECT_EQ(placing_.wait_for(100ms), std::future_status::timeout)
      << "placed before the whole stream was confirmed";
  EXPECT_FALSE(fs::exists(dst_));
  arriving_.confirm(ImageDigest{1, 2});
  const TreeCounts counts = placing_.get();
  EXPECT_EQ(counts.files, 2u);
  test_tree::expect_same_tree(dir_ / "src", dst_);
  EXPECT_FALSE(fs::exists(tree_stream_staging(dst_))) << "the stream is scratch space";
}

TEST_F(TreeAsItArrives, AFailedStreamLeavesNothingBehind) {
  arrive(data_start() + 200'000);
  ASSERT_FALSE(staged_entry("a", 200'000).empty());
  arriving_.fail();
  EXPECT_THROW(placing_.get(), TransferError);
  staged_.reset();  // the stream's own staging file, as the session discards it
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_.path()), fs::directory_iterator()), 1)
      << "only src/ may be left";
  EXPECT_FALSE(fs::exists(dst_));
}

TEST(TreeStreamStaging, AStreamThatFitsInMemoryIsStagedThereNotBesideTheDestination) {
  test::TempDir dir;
  const StagedImage stream = stage_tree_stream(dir / "env", 1 << 20, "job1", false);
  EXPECT_TRUE(stream.in_memory());
  EXPECT_EQ(stream.where(), "memory");
  EXPECT_TRUE(test::list_dir(dir.path()).empty()) << "a stream file appeared beside DST";
}

TEST(TreeStreamStaging, AStreamOverAQuarterOfTheCgroupsRoomGoesBesideTheDestination) {
  test::TempDir dir;
  const MemoryCgroup cgroup(64 << 20);
  if (!cgroup.made())
    GTEST_SKIP() << "no memory cgroup to test in: " << cgroup.error();
  const std::string seen = cgroup.run([&] {
    const StagedImage stream = stage_tree_stream(dir / "env", 32 << 20, "job1", false);
    const bool beside = !test::list_dir(dir.path()).empty();
    return std::string(stream.in_memory() && stream.where() == "memory" ? "memory" : "file") +
           (beside ? " beside" : "");
  });
  EXPECT_EQ(seen, "file beside") << "32 MiB of a 64 MiB cgroup was staged in memory";
}

TEST(TreeStreamStaging, ADestinationWithoutRoomForTheTreeFailsBeforeDataMoves) {
  test::TempDir dir;
  const fs::path small = dir / "small";
  SmallMount mount(small, "size=1m");
  if (!mount.mounted()) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << mount.error();
  }
  try {
    (void)stage_tree_stream(small / "env", 8 << 20, "job1", false);
    ADD_FAILURE() << "an 8 MiB tree was staged for a 1 MiB file system";
  } catch (const TransferError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("no space for the tree's 8388608 bytes in " + small.string()),
              std::string::npos)
        << what;
  }
  EXPECT_TRUE(test::list_dir(small).empty());
}

}  // namespace
}  // namespace imgcast::replicator
