#include "replicator/cache/eviction.h"

#include <gtest/gtest.h>

namespace imgcast::replicator {
namespace {

struct Entries {
  std::vector<EntryRecord> records;
  std::vector<bool> in_use;
  void add(std::uint64_t bytes, std::int64_t last_used, bool used = false) {
    EntryRecord record;
    record.bytes = bytes;
    record.last_used_ns = last_used;
    record.added_ns = static_cast<std::int64_t>(records.size());
    records.push_back(record);
    in_use.push_back(used);
  }
  std::vector<EvictionCandidate> candidates() const {
    std::vector<EvictionCandidate> out;
    for (std::size_t i = 0; i < records.size(); ++i) {
      out.push_back({&records[i], in_use[i]});
    }
    return out;
  }
};

TEST(Eviction, NothingGoesWhenTheImageFits) {
  Entries e;
  e.add(100, 1);
  e.add(100, 2);
  EXPECT_EQ(choose_evictions(e.candidates(), 100, 300), std::vector<std::size_t>{});
}

TEST(Eviction, TheLeastRecentlyUsedGoFirstAndOnlyAsManyAsNeeded) {
  Entries e;
  e.add(100, 30);  // 0
  e.add(100, 10);  // 1: oldest
  e.add(100, 20);  // 2
  EXPECT_EQ(choose_evictions(e.candidates(), 150, 300), (std::vector<std::size_t>{1, 2}));
  EXPECT_EQ(choose_evictions(e.candidates(), 100, 300), (std::vector<std::size_t>{1}));
}

TEST(Eviction, AnEntryInUseIsNeverChosen) {
  Entries e;
  e.add(100, 10, /*used=*/true);
  e.add(100, 20);
  e.add(100, 30);
  EXPECT_EQ(choose_evictions(e.candidates(), 100, 300), (std::vector<std::size_t>{1}));
  EXPECT_EQ(choose_evictions(e.candidates(), 200, 300), (std::vector<std::size_t>{1, 2}));
}

TEST(Eviction, FailsWhenWhatIsInUseLeavesNoRoom) {
  Entries e;
  e.add(200, 10, true);
  e.add(100, 20);
  EXPECT_FALSE(choose_evictions(e.candidates(), 150, 300));
  EXPECT_FALSE(choose_evictions({}, 301, 300));  // larger than the whole budget
  EXPECT_EQ(choose_evictions({}, 300, 300), std::vector<std::size_t>{});
}

TEST(Prune, BySizeLeastRecentFirstAndByAge) {
  Entries e;
  e.add(100, 50);
  e.add(100, 10);
  e.add(100, 40, true);
  e.add(100, 20);
  EXPECT_EQ(choose_prune(e.candidates(), 200, std::nullopt), (std::vector<std::size_t>{1, 3}));
  EXPECT_EQ(choose_prune(e.candidates(), std::nullopt, 45), (std::vector<std::size_t>{1, 3}));
  // In use stays whatever the goal: 100 bytes remain.
  EXPECT_EQ(choose_prune(e.candidates(), 0, std::nullopt), (std::vector<std::size_t>{1, 3, 0}));
  EXPECT_EQ(choose_prune(e.candidates(), std::nullopt, std::nullopt), std::vector<std::size_t>{});
}

}  // namespace
}  // namespace imgcast::replicator
