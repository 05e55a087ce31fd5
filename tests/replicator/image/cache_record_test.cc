#include "replicator/image/cache_record.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>

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
  r.inode = 4242;
  r.device = 2049;
  return r;
}

TEST(CacheRecord, RoundTrips) {
  const CacheRecord r = sample();
  EXPECT_EQ(CacheRecord::decode(r.encode()), r);
}

TEST(CacheRecord, MalformedTextIsNoRecord) {
  const std::string good = sample().encode();
  const std::string zeros(32, '0');
  for (const std::string& bad :
       {std::string(), std::string("imgcast-cache"), good + " extra",
        "imgcast-cache 2 0123456789abcdef 5 " + zeros + " 1 2",
        "imgcast-cache 2 0123456789ABCDEF 5 " + zeros + " 1 2 3",
        "imgcast-cache 2 0123456789abcdef -5 " + zeros + " 1 2 3",
        "imgcast-cache 2 0123456789abcdef 5 " + std::string(31, '0') + " 1 2 3",
        "imgcast-cache 2 0123456789abcdef 5 " + zeros + " x 2 3",
        "imgcast-cache 2 0123456789abcdef 5 " + zeros + " 1 x 3",
        "imgcast-cache 2 0123456789abcdef 5 " + zeros + " 1 2 -3",
        // Version 1 bound no inode or device: such a copy is sent once more.
        "imgcast-cache 1 0123456789abcdef 5 " + zeros + " 1", std::string(4096, 'a')}) {
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

// Real files in a real directory. The tests run as root, and root owns what it creates: "ours"
// is geteuid(), and a planted file is one chowned to uid 65534 (nobody) afterwards.
constexpr uid_t kNobody = 65534;

class CacheFileTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("imgcast-cache-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms(0755));
    write(dir_ / "app.sif", "image");
  }
  void TearDown() override { fs::remove_all(dir_); }
  static void write(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  }
  // The record of what "app.sif" really holds.
  static CacheRecord true_record(const std::string& text) {
    CacheRecord r = sample();
    r.image_bytes = text.size();
    ImageHasher hasher;
    hasher.update(std::as_bytes(std::span(text.data(), text.size())));
    r.digest = hasher.digest();
    return r;
  }
  void attach(const std::string& name = "app.sif", const std::string& text = "image") {
    UniqueFd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY));
    UniqueFd file(::open((dir_ / name).c_str(), O_RDWR));
    ASSERT_TRUE(file.valid());
    attach_cache_record(dir.get(), file.get(), name, true_record(text), GetParam());
  }
  fs::path sidecar() const { return dir_ / ".app.sif.imgcast-cache"; }
  // Keeps the copy's mtime (and so its identity) while its bytes change under it.
  void rewrite_keeping_mtime(const fs::path& path, const std::string& text) {
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    UniqueFd fd(::open(path.c_str(), O_WRONLY));
    ASSERT_EQ(::pwrite(fd.get(), text.data(), text.size(), 0), static_cast<ssize_t>(text.size()));
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    ASSERT_EQ(::futimens(fd.get(), times), 0);
  }
  fs::path dir_;
};

TEST_P(CacheFileTest, AttachedRecordReadsBack) {
  attach();
  const auto record = read_cache_record(dir_ / "app.sif");
  ASSERT_TRUE(record);  // root's own copy in root's own directory: ours
  EXPECT_EQ(record->source_key, sample().source_key);
  EXPECT_EQ(record->digest, true_record("image").digest);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "app.sif").c_str(), &st), 0);
  EXPECT_EQ(record->inode, st.st_ino);
  EXPECT_EQ(record->device, st.st_dev);
  // The sidecar exists exactly when the xattr was not used.
  EXPECT_EQ(fs::exists(sidecar()), !GetParam());
}

TEST_P(CacheFileTest, ACopyChangedSinceItWasPlacedHasNoRecord) {
  attach();
  {
    std::ofstream(dir_ / "app.sif", std::ios::app) << "!";  // size and mtime change
  }
  EXPECT_FALSE(read_cache_record(dir_ / "app.sif"));
}

TEST_P(CacheFileTest, ACopyWhoseBytesChangedButNotItsMtimeIsReHashedAndRefused) {
  attach();
  rewrite_keeping_mtime(dir_ / "app.sif", "IMAGE");
  // Identity alone still matches: only the re-hash tells.
  EXPECT_TRUE(open_cached_copy(dir_ / "app.sif"));
  EXPECT_FALSE(read_cache_record(dir_ / "app.sif"));
}

TEST_P(CacheFileTest, ASymlinkIsNeverFollowed) {
  attach();
  fs::create_symlink(dir_ / "app.sif", dir_ / "link.sif");
  EXPECT_FALSE(read_cache_record(dir_ / "link.sif"));
  EXPECT_FALSE(read_cache_record(dir_ / "missing.sif"));
}

TEST_P(CacheFileTest, ACopyAnotherUserOwnsIsNotCached) {
  attach();
  ASSERT_EQ(::chown((dir_ / "app.sif").c_str(), kNobody, kNobody), 0);
  // The record, its identity and the bytes all match: only the owner is wrong.
  EXPECT_FALSE(read_cache_record(dir_ / "app.sif"));
}

TEST_P(CacheFileTest, ACopyOthersMayWriteIsNotCached) {
  attach();
  fs::permissions(dir_ / "app.sif", fs::perms::group_write, fs::perm_options::add);
  EXPECT_FALSE(read_cache_record(dir_ / "app.sif"));
}

TEST_P(CacheFileTest, ASidecarAnotherUserOwnsIsNotCached) {
  if (GetParam())
    GTEST_SKIP() << "the xattr lives on the copy itself";
  attach();
  ASSERT_EQ(::chown(sidecar().c_str(), kNobody, kNobody), 0);
  EXPECT_FALSE(read_cache_record(dir_ / "app.sif"));
}

TEST_P(CacheFileTest, ADirectoryOthersMayWriteIntoCountsOnlyWhenSticky) {
  attach();
  fs::permissions(dir_, fs::perms(0777));
  EXPECT_FALSE(read_cache_record(dir_ / "app.sif"));  // anyone could swap the copy
  fs::permissions(dir_, fs::perms(01777));
  EXPECT_TRUE(read_cache_record(dir_ / "app.sif"));  // /tmp: only we may rename our copy
  ASSERT_EQ(::chown(dir_.c_str(), kNobody, kNobody), 0);
  EXPECT_FALSE(read_cache_record(dir_ / "app.sif"));  // but a sticky dir's owner may
}

TEST_P(CacheFileTest, ARecordCopiedOntoAnotherFileDoesNotDescribeIt) {
  attach();
  // Same bytes, same mtime, the same record: another inode.
  write(dir_ / "other.sif", "image");
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "app.sif").c_str(), &st), 0);
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ / "other.sif").c_str(), times, 0), 0);
  if (GetParam()) {
    char value[512];
    const ssize_t n = ::getxattr((dir_ / "app.sif").c_str(), "user.imgcast.cache", value, 512);
    ASSERT_GT(n, 0);
    ASSERT_EQ(::setxattr((dir_ / "other.sif").c_str(), "user.imgcast.cache", value,
                         static_cast<std::size_t>(n), 0),
              0);
  } else {
    fs::copy_file(sidecar(), dir_ / ".other.sif.imgcast-cache");
  }
  EXPECT_FALSE(read_cache_record(dir_ / "other.sif"));
}

TEST_P(CacheFileTest, TheSidecarIsReplacedNeverWrittenThrough) {
  if (GetParam())
    GTEST_SKIP() << "no sidecar is written";
  // A hard link planted under the sidecar's name: writing through it would truncate the file
  // it links to.
  write(dir_ / "victim", "do not touch");
  fs::create_hard_link(dir_ / "victim", sidecar());
  attach();
  std::ifstream in(dir_ / "victim");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "do not touch");
  EXPECT_TRUE(read_cache_record(dir_ / "app.sif"));
}

INSTANTIATE_TEST_SUITE_P(XattrAndSidecar, CacheFileTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "xattr" : "sidecar"; });

}  // namespace
}  // namespace imgcast::replicator
