#include "replicator/cache/node_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "replicator/errors.h"
#include "tests/replicator/cache/cache_fixture.h"
#include "tests/support/process.h"

namespace imgcast::replicator {
namespace {

namespace fs = std::filesystem;
using namespace test_cache;

TEST(NodeCache, OpensANewCacheOursAlone) {
  test::TempDir tmp;
  NodeCache cache = NodeCache::open(tmp / "a/b/cache");
  struct stat st {};
  ASSERT_EQ(::stat((tmp / "a/b/cache").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const char* sub : {"entries", "pins", "staging"}) {
    EXPECT_TRUE(fs::is_directory(tmp / "a/b/cache" / sub)) << sub;
  }
  EXPECT_TRUE(cache.list().empty());
}

TEST(NodeCache, RefusesADirectoryOthersCanWrite) {
  test::TempDir tmp;
  fs::create_directories(tmp / "cache");
  ::chmod((tmp / "cache").c_str(), 0777);
  EXPECT_THROW(NodeCache::open(tmp / "cache"), SecurityError);
  ::chmod((tmp / "cache").c_str(), 01777);  // sticky is not enough: names could be taken first
  EXPECT_THROW(NodeCache::open(tmp / "cache"), SecurityError);
  ::chmod((tmp / "cache").c_str(), 0700);
  fs::create_directories(tmp / "cache/entries");
  ::chown((tmp / "cache/entries").c_str(), 65534, 65534);
  EXPECT_THROW(NodeCache::open(tmp / "cache"), SecurityError);
}

TEST(NodeCache, ACommittedImageIsFoundByItsSourceAndItsDigest) {
  test::TempDir tmp;
  NodeCache cache = NodeCache::open(tmp / "cache");
  const EntryPin pin = stage(cache, "job1", kMiB, 'a', key(1));
  EXPECT_EQ(pin.record().digest, digest_of(kMiB, 'a'));
  EXPECT_EQ(pin.path(), tmp / "cache/entries" / pin.record().digest.to_hex());
  struct stat st {};
  ASSERT_EQ(::stat(pin.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);  // read-only: a hard-linked DST cannot change it
  EXPECT_TRUE(fs::is_empty(tmp / "cache/staging"));

  const auto hit = cache.find_by_source(key(1), kMiB);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->record().digest, pin.record().digest);
  EXPECT_FALSE(cache.find_by_source(key(1), kMiB + 1));  // another size: another source
  EXPECT_FALSE(cache.find_by_source(key(2), kMiB));
  EXPECT_TRUE(cache.find_by_digest(pin.record().digest.to_hex().substr(0, 8)));
}

TEST(NodeCache, IdenticalContentFromTwoSourcesIsStoredOnce) {
  test::TempDir tmp;
  NodeCache cache = NodeCache::open(tmp / "cache");
  (void)stage(cache, "job1", kMiB, 'a', key(1));
  (void)stage(cache, "job2", kMiB, 'a', key(2));
  const auto entries = cache.list();
  ASSERT_EQ(entries.size(), 1u);
  ASSERT_EQ(entries[0].record.sources.size(), 2u);
  EXPECT_EQ(entries[0].record.sources[1].key, key(2));
  EXPECT_TRUE(cache.find_by_source(key(1), kMiB));
  EXPECT_TRUE(cache.find_by_source(key(2), kMiB));
  EXPECT_TRUE(fs::is_empty(tmp / "cache/staging"));
}

TEST(NodeCache, TheBudgetEvictsTheLeastRecentlyUsedEntry) {
  test::TempDir tmp;
  NodeCache cache = NodeCache::open(tmp / "cache");
  const std::uint64_t budget = 3 * kMiB;
  { (void)stage(cache, "j1", kMiB, '1', key(1), budget); }
  { (void)stage(cache, "j2", kMiB, '2', key(2), budget); }
  { (void)stage(cache, "j3", kMiB, '3', key(3), budget); }
  (void)cache.find_by_source(key(1), kMiB);  // 1 is now used more recently than 2
  { (void)stage(cache, "j4", kMiB, '4', key(4), budget); }
  EXPECT_TRUE(cache.find_by_source(key(1), kMiB));
  EXPECT_FALSE(cache.find_by_source(key(2), kMiB));
  EXPECT_TRUE(cache.find_by_source(key(3), kMiB));
  EXPECT_TRUE(cache.find_by_source(key(4), kMiB));
  EXPECT_EQ(cache.list().size(), 3u);
}

TEST(NodeCache, AnEntryInUseIsNotEvictedAndTheNewImageFailsWithAReason) {
  test::TempDir tmp;
  NodeCache cache = NodeCache::open(tmp / "cache");
  const EntryPin held = stage(cache, "j1", 2 * kMiB, '1', key(1), 3 * kMiB);
  try {
    (void)cache.admit(2 * kMiB, 3 * kMiB, "j2");
    FAIL() << "admitted past the budget";
  } catch (const TransferError& error) {
    EXPECT_NE(std::string(error.what()).find("in use or pinned"), std::string::npos)
        << error.what();
  }
  EXPECT_TRUE(fs::exists(held.path()));
  EXPECT_TRUE(fs::is_empty(tmp / "cache/staging"));  // the refused one reserved nothing
}

TEST(NodeCache, ReservationsOfCopiesOnTheirWayInCount) {
  test::TempDir tmp;
  NodeCache cache = NodeCache::open(tmp / "cache");
  CacheReservation first = cache.admit(2 * kMiB, 3 * kMiB, "j1");
  EXPECT_THROW((void)cache.admit(2 * kMiB, 3 * kMiB, "j2"), TransferError);
  first.release();
  EXPECT_NO_THROW((void)cache.admit(2 * kMiB, 3 * kMiB, "j2"));
}

TEST(NodeCache, APinByHandSurvivesPruneAndRemoveUntilUnpinned) {
  test::TempDir tmp;
  NodeCache cache = NodeCache::open(tmp / "cache");
  const std::string hex = [&] { return stage(cache, "j1", kMiB, 'p', key(1)).record().digest.to_hex(); }();
  (void)stage(cache, "j2", kMiB, 'q', key(2));
  cache.pin(hex.substr(0, 10), "site-base");
  const auto removed = cache.prune(0, std::nullopt);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].sources[0].key, key(2));
  std::string why;
  EXPECT_FALSE(cache.remove(hex, &why));
  EXPECT_NE(why.find("site-base"), std::string::npos) << why;
  EXPECT_EQ(cache.list().at(0).manual_pins, std::vector<std::string>{"site-base"});
  EXPECT_TRUE(cache.unpin(hex, "site-base"));
  EXPECT_TRUE(cache.remove(hex, &why)) << why;
  EXPECT_TRUE(cache.list().empty());
  EXPECT_THROW(cache.pin(hex, "x"), InputError);
  EXPECT_THROW(cache.pin("00", "../evil"), InputError);
}

TEST(NodeCache, AnEntryChangedSinceItWasCachedIsNotUsedAndGoes) {
  test::TempDir tmp;
  NodeCache cache = NodeCache::open(tmp / "cache");
  const fs::path path = [&] { return stage(cache, "j1", kMiB, 'c', key(1)).path(); }();
  ::chmod(path.c_str(), 0644);
  { std::ofstream(path, std::ios::in | std::ios::out | std::ios::binary) << "changed"; }
  EXPECT_FALSE(cache.find_by_source(key(1), kMiB));
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(cache.list().empty());
}

TEST(NodeCache, ARecordSomeoneElseWroteIsNotAnEntry) {
  test::TempDir tmp;
  NodeCache cache = NodeCache::open(tmp / "cache");
  const std::string hex = [&] { return stage(cache, "j1", kMiB, 'r', key(1)).record().digest.to_hex(); }();
  ::chown((tmp / "cache/entries" / (hex + ".json")).c_str(), 65534, 65534);
  EXPECT_FALSE(cache.find_by_source(key(1), kMiB));
  EXPECT_TRUE(cache.list().empty());
}

}  // namespace
}  // namespace imgcast::replicator
