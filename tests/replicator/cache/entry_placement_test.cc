#include "replicator/cache/entry_placement.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "replicator/errors.h"
#include "tests/replicator/cache/cache_fixture.h"
#include "tests/support/process.h"

namespace imgcast::replicator {
namespace {

namespace fs = std::filesystem;
using namespace test_cache;

TEST(EntryPlacement, OnTheCachesFileSystemDstIsALinkNotASecondCopy) {
  test::TempDir tmp;
  NodeCache cache = NodeCache::open(tmp / "cache");
  const EntryPin pin = stage(cache, "j1", kMiB, 'h', key(1));
  fs::create_directories(tmp / "job");
  const EntryPlacement how = place_from_entry(pin, tmp / "job/app.sif", 0644, "j1", false);
  // tmpfs has no reflink: a hard link.
  EXPECT_TRUE(how == EntryPlacement::kHardLink || how == EntryPlacement::kReflink);
  EXPECT_TRUE(test::files_equal(tmp / "job/app.sif", pin.path()));
  EXPECT_EQ(test::list_dir(tmp / "job"), std::vector<std::string>{"app.sif"});
  EXPECT_EQ(place_from_entry(pin, tmp / "job/app.sif", 0644, "j1", false),
            how == EntryPlacement::kHardLink ? EntryPlacement::kAlreadyThere : how);
  // The link moved the entry's ctime, not what the cache checks: it is still a hit.
  EXPECT_TRUE(cache.find_by_source(key(1), kMiB));
}

TEST(EntryPlacement, OnAnotherFileSystemDstIsAWholeCopyWithItsMode) {
  test::TempDir tmp;
  test::TempDir disk("/var/tmp");
  NodeCache cache = NodeCache::open(tmp / "cache");
  const EntryPin pin = stage(cache, "j1", 3 * kMiB + 17, 'c', key(1));
  std::ofstream(disk / "app.sif") << "an older file";
  EXPECT_EQ(place_from_entry(pin, disk / "app.sif", 0640, "j1", false), EntryPlacement::kCopy);
  EXPECT_TRUE(test::files_equal(disk / "app.sif", pin.path()));
  struct stat st {};
  ASSERT_EQ(::stat((disk / "app.sif").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(test::list_dir(disk.path()), std::vector<std::string>{"app.sif"});
}

TEST(EntryPlacement, AMissingDirectoryOrADirectoryAtDstIsRefused) {
  test::TempDir tmp;
  NodeCache cache = NodeCache::open(tmp / "cache");
  const EntryPin pin = stage(cache, "j1", kMiB, 'd', key(1));
  EXPECT_THROW(place_from_entry(pin, tmp / "nowhere/app.sif", 0644, "j1", false), InputError);
  fs::create_directories(tmp / "dir.sif");
  EXPECT_THROW(place_from_entry(pin, tmp / "dir.sif", 0644, "j1", false), InputError);
}

}  // namespace
}  // namespace imgcast::replicator
