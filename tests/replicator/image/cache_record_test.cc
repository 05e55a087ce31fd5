#include "replicator/image/cache_record.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "replicator/unique_fd.h"

namespace imgcast::replicator {
namespace {

namespace fs = std::filesystem;

CacheRecord sample() {
  CacheRecord r;
  r.source_key = "0123456789abcdef";
  r.image_bytes = 5;
  r.digest = ImageDigest{0x1122334455667788ull, 0x99aabbccddeeff00ull};
  r.placed_mtime_ns = 1234567890123456789;
  return r;
}

TEST(CacheRecord, RoundTrips) {
  const CacheRecord r = sample();
  EXPECT_EQ(CacheRecord::decode(r.encode()), r);
}

TEST(CacheRecord, MalformedTextIsNoRecord) {
  const std::string good = sample().encode();
  for (const std::string& bad :
       {std::string(), std::string("imgcast-cache"), good + " extra",
        std::string("imgcast-cache 2 0123456789abcdef 5 ") + std::string(32, '0') + " 1",
        std::string("imgcast-cache 1 0123456789ABCDEF 5 ") + std::string(32, '0') + " 1",
        std::string("imgcast-cache 1 0123456789abcdef -5 ") + std::string(32, '0') + " 1",
        std::string("imgcast-cache 1 0123456789abcdef 5 ") + std::string(31, '0') + " 1",
        std::string("imgcast-cache 1 0123456789abcdef 5 ") + std::string(32, '0') + " x",
        std::string(4096, 'a')}) {
    EXPECT_FALSE(CacheRecord::decode(bad)) << bad.substr(0, 80);
  }
}

TEST(CacheRecord, SourceKeyFollowsPathSizeMtimeAndInode) {
  struct stat st {};
  st.st_size = 10;
  st.st_ino = 7;
  st.st_mtim.tv_sec = 100;
  const std::string key = make_source_key("/lustre/app.sif", st);
  EXPECT_EQ(key.size(), 16u);
  EXPECT_EQ(make_source_key("/lustre/app.sif", st), key);
  EXPECT_NE(make_source_key("/lustre/other.sif", st), key);
  struct stat changed = st;
  changed.st_size = 11;
  EXPECT_NE(make_source_key("/lustre/app.sif", changed), key);
  changed = st;
  changed.st_mtim.tv_nsec = 1;
  EXPECT_NE(make_source_key("/lustre/app.sif", changed), key);
  changed = st;
  changed.st_ino = 8;
  EXPECT_NE(make_source_key("/lustre/app.sif", changed), key);
}

class CacheFileTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("imgcast-cache-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "app.sif") << "image";
  }
  void TearDown() override { fs::remove_all(dir_); }
  void attach() {
    UniqueFd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY));
    UniqueFd file(::open((dir_ / "app.sif").c_str(), O_RDWR));
    attach_cache_record(dir.get(), file.get(), "app.sif", sample(), GetParam());
  }
  fs::path dir_;
};

TEST_P(CacheFileTest, AttachedRecordReadsBack) {
  attach();
  const auto record = read_cache_record(dir_ / "app.sif");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->source_key, sample().source_key);
  EXPECT_EQ(record->digest, sample().digest);
  // The sidecar exists exactly when the xattr was not used.
  EXPECT_EQ(fs::exists(dir_ / ".app.sif.imgcast-cache"), !GetParam());
}

TEST_P(CacheFileTest, ACopyChangedSinceItWasPlacedHasNoRecord) {
  attach();
  {
    std::ofstream(dir_ / "app.sif", std::ios::app) << "!";  // size and mtime change
  }
  EXPECT_FALSE(read_cache_record(dir_ / "app.sif"));
}

TEST_P(CacheFileTest, ASymlinkIsNeverFollowed) {
  attach();
  fs::create_symlink(dir_ / "app.sif", dir_ / "link.sif");
  EXPECT_FALSE(read_cache_record(dir_ / "link.sif"));
  EXPECT_FALSE(read_cache_record(dir_ / "missing.sif"));
}

INSTANTIATE_TEST_SUITE_P(XattrAndSidecar, CacheFileTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "xattr" : "sidecar"; });

}  // namespace
}  // namespace imgcast::replicator
