#include "replicator/cache/entry_record.h"

#include <gtest/gtest.h>

namespace imgcast::replicator {
namespace {

EntryRecord sample() {
  EntryRecord record;
  record.digest = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  record.bytes = 256 << 20;
  record.inode = 4242;
  record.mtime_ns = 1'700'000'000'123'456'789;
  record.added_ns = 1'700'000'001'000'000'000;
  record.last_used_ns = 1'700'000'002'000'000'000;
  record.sources = {{"00112233aabbccdd", "/lustre/app.sif"}, {"ffeeddcc00112233", "/other.sif"}};
  return record;
}

TEST(EntryRecord, RoundTrips) {
  const EntryRecord record = sample();
  EXPECT_EQ(EntryRecord::decode(record.encode()), record);
}

TEST(EntryRecord, RejectsWhatIsNotAWholeRecord) {
  const std::string good = sample().encode();
  EXPECT_FALSE(EntryRecord::decode(""));
  EXPECT_FALSE(EntryRecord::decode("{"));
  EXPECT_FALSE(EntryRecord::decode("[1,2]"));
  EXPECT_FALSE(EntryRecord::decode("{\"format\":3}"));  // found by fuzz_entry_record: a throw
  EXPECT_FALSE(EntryRecord::decode("{\"format\":\"imgcast-cache-entry 1\",\"digest\":1}"));
  std::string other_format = good;
  other_format.replace(other_format.find("entry 1"), 7, "entry 9");
  EXPECT_FALSE(EntryRecord::decode(other_format));
  std::string short_digest = good;
  short_digest.replace(short_digest.find("0123456789abcdef"), 16, "0123");
  EXPECT_FALSE(EntryRecord::decode(short_digest));
  std::string negative_size = good;
  negative_size.replace(negative_size.find("\"bytes\":") + 8, 0, "-");
  EXPECT_FALSE(EntryRecord::decode(negative_size));
  std::string bad_key = good;
  bad_key.replace(bad_key.find("00112233aabbccdd"), 16, "../../etc/passwd");
  EXPECT_FALSE(EntryRecord::decode(bad_key));
  std::string no_inode = good;
  no_inode.replace(no_inode.find("\"inode\""), 7, "\"inodx\"");
  EXPECT_FALSE(EntryRecord::decode(no_inode));
}

TEST(EntryRecord, RefusesMoreSourcesThanItKeeps) {
  EntryRecord record = sample();
  record.sources.assign(kMaxEntrySources + 1, {"00112233aabbccdd", "/x"});
  EXPECT_FALSE(EntryRecord::decode(record.encode()));
  record.sources.resize(kMaxEntrySources);
  EXPECT_TRUE(EntryRecord::decode(record.encode()));
}

TEST(ImageDigestHex, ParsesWhatToHexWrites) {
  const ImageDigest digest{0xdeadbeef00000001ULL, 42};
  EXPECT_EQ(ImageDigest::from_hex(digest.to_hex()), digest);
  EXPECT_FALSE(ImageDigest::from_hex("xyz"));
  EXPECT_FALSE(ImageDigest::from_hex(digest.to_hex() + "0"));
  EXPECT_FALSE(ImageDigest::from_hex(std::string(31, '0') + "g"));
}

}  // namespace
}  // namespace imgcast::replicator
