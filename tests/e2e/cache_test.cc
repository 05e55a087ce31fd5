// The node-local cache end to end: a second run skips every node and never reads the source; a
// missing or changed copy is sent to its node alone; a changed source is never taken for
// cached; --force sends anyway; a cached copy that does not hold what its record says, or that
// another user could have planted, is sent the image again.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

using namespace std::chrono_literals;

class CacheTest : public ::testing::Test {
 protected:
  void SetUp() override { write_random_file(source_, (3u << 20) + 17, 51); }

  nlohmann::json replicate(std::vector<std::string> extra = {}) {
    extra.push_back("--json");
    const ProcessResult result = run(job_.command(source_, extra), 60s);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    last_err_ = result.err;
    return nlohmann::json::parse(result.out);
  }
  static std::vector<bool> cached(const nlohmann::json& report) {
    std::vector<bool> out;
    for (const auto& node : report.at("nodes"))
      out.push_back(node.at("cached").get<bool>());
    return out;
  }
  // The source's last access time, set far in the past first: a read moves it (relatime
  // updates an atime older than the mtime), an open or a stat does not.
  void age_source_atime() {
    struct stat st {};
    ASSERT_EQ(::stat(source_.c_str(), &st), 0);
    struct timespec times[2] = {{946684800, 0}, st.st_mtim};
    ASSERT_EQ(::utimensat(AT_FDCWD, source_.c_str(), times, 0), 0);
  }
  time_t source_atime() const {
    struct stat st {};
    ::stat(source_.c_str(), &st);
    return st.st_atim.tv_sec;
  }

  // The copy's cache record (the xattr), split at its spaces:
  // "imgcast-cache VERSION KEY BYTES DIGEST MTIME_NS [INODE DEVICE]".
  static std::vector<std::string> record_fields(const std::filesystem::path& copy) {
    char value[512] = {};
    const ssize_t n = ::getxattr(copy.c_str(), "user.imgcast.cache", value, sizeof value);
    EXPECT_GT(n, 0) << copy;
    std::vector<std::string> fields;
    std::istringstream in(std::string(value, static_cast<std::size_t>(std::max<ssize_t>(n, 0))));
    for (std::string field; in >> field;)
      fields.push_back(field);
    fields.resize(std::max<std::size_t>(fields.size(), 8));
    return fields;
  }
  static void set_record(const std::filesystem::path& copy,
                         const std::vector<std::string>& fields) {
    std::string text;
    for (const auto& field : fields) {
      if (!field.empty())
        text += (text.empty() ? "" : " ") + field;
    }
    ASSERT_EQ(::setxattr(copy.c_str(), "user.imgcast.cache", text.data(), text.size(), 0), 0);
  }

  std::string last_err_;  // what the last replicate() wrote to stderr
  static constexpr uid_t kNobody = 65534;  // the other user (the tests run as root)
  LocalJob job_{4};
  std::filesystem::path source_ = job_.dir / "source.img";
};

TEST_F(CacheTest, ASecondRunSkipsEveryNodeAndNeverReadsTheSource) {
  EXPECT_EQ(cached(replicate()), (std::vector<bool>{false, false, false, false}));
  age_source_atime();
  const nlohmann::json again = replicate();
  EXPECT_EQ(cached(again), (std::vector<bool>{true, true, true, true}));
  EXPECT_EQ(again.at("totals").at("cached"), 4);
  EXPECT_EQ(source_atime(), 946684800) << "the source was read although every copy was cached";
  job_.expect_all_copies_of(source_);
}

TEST_F(CacheTest, AMissingOrChangedCopyIsSentToItsNodeAlone) {
  replicate();
  std::filesystem::remove(job_.copy(2));
  {
    std::fstream copy(job_.copy(3), std::ios::in | std::ios::out | std::ios::binary);
    copy.seekp(1000);
    copy.put('!');  // same size, new mtime
  }
  const nlohmann::json again = replicate();
  // The root stages again as the source of the others; ranks 1 keeps its copy.
  EXPECT_EQ(cached(again), (std::vector<bool>{false, true, false, false}));
  // The skipped node is done at its Skip: the transfer's Finish is not sent to it (it used to
  // log "unexpected Finish from the root").
  EXPECT_EQ(last_err_.find("error"), std::string::npos) << last_err_;
  job_.expect_all_copies_of(source_);
}

TEST_F(CacheTest, AChangedSourceIsNeverTakenForCached) {
  replicate();
  write_random_file(source_, (3u << 20) + 17, 52);  // same size, new bytes and mtime
  EXPECT_EQ(cached(replicate()), (std::vector<bool>{false, false, false, false}));
  job_.expect_all_copies_of(source_);
}

TEST_F(CacheTest, ForceSendsToEveryNode) {
  replicate();
  EXPECT_EQ(cached(replicate({"--force"})), (std::vector<bool>{false, false, false, false}));
  job_.expect_all_copies_of(source_);
}

TEST_F(CacheTest, ACachedCopyWhoseDigestLiesIsSentAgain) {
  replicate();
  // Rank 1's record now claims another digest: the re-hash of its copy refutes it, so the node
  // is sent the image instead of answering cached with a digest it does not hold.
  std::vector<std::string> record = record_fields(job_.copy(1));
  record.at(4) = std::string(32, '0');
  set_record(job_.copy(1), record);
  // (The root is the source of the others, so it stages again too.)
  EXPECT_EQ(cached(replicate()), (std::vector<bool>{false, false, true, true}));
  job_.expect_all_copies_of(source_);
}

TEST_F(CacheTest, ACopyChangedUnderItsRecordIsSentAgain) {
  replicate();
  // Other bytes, the same size and mtime: the record still describes the file, but the file no
  // longer holds what it says.
  struct stat st {};
  ASSERT_EQ(::stat(job_.copy(2).c_str(), &st), 0);
  {
    std::fstream copy(job_.copy(2), std::ios::in | std::ios::out | std::ios::binary);
    copy.seekp(4096);
    copy.put('!');
  }
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, job_.copy(2).c_str(), times, 0), 0);
  EXPECT_EQ(cached(replicate()), (std::vector<bool>{false, true, false, true}));
  job_.expect_all_copies_of(source_);
}

// The review's attack: in a 1777 directory (/tmp) another user plants DST with bytes of their
// own and a record that matches them, in the format the victim's imgcast writes.
TEST_F(CacheTest, ACopyAndRecordAnotherUserPlantedAreNotCached) {
  LocalJob job(2);
  job.log_level = "warn";
  const std::vector<std::string> argv = job.command(source_, {"--json"});
  ASSERT_EQ(run(argv, 60s).exit_code, 0);
  for (int rank = 0; rank < 2; ++rank) {
    std::filesystem::permissions(job.node_dir(rank), std::filesystem::perms(01777));
    std::vector<std::string> record = record_fields(job.copy(rank));
    std::filesystem::remove(job.copy(rank));
    write_random_file(job.copy(rank), std::filesystem::file_size(source_), 666);  // attacker's
    ASSERT_EQ(::chown(job.copy(rank).c_str(), kNobody, kNobody), 0);
    struct stat st {};
    ASSERT_EQ(::stat(job.copy(rank).c_str(), &st), 0);
    record.at(5) = std::to_string(static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                                  st.st_mtim.tv_nsec);
    if (record.at(1) == "2") {  // this version binds the inode and device too
      record.at(6) = std::to_string(st.st_ino);
      record.at(7) = std::to_string(st.st_dev);
    }
    set_record(job.copy(rank), record);
  }
  const ProcessResult result = run(argv, 60s);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(cached(nlohmann::json::parse(result.out)), (std::vector<bool>{false, false}));
  EXPECT_NE(result.err.find("belongs to uid 65534"), std::string::npos) << result.err;
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_TRUE(files_equal(source_, job.copy(rank))) << "rank " << rank;
    struct stat st {};
    ASSERT_EQ(::stat(job.copy(rank).c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, ::geteuid()) << "rank " << rank;
  }
}

// Our own copies in a sticky directory others may write into still count as cached.
TEST_F(CacheTest, OurOwnCopiesInAStickyDirectoryAreCached) {
  for (int rank = 0; rank < job_.nodes; ++rank)
    std::filesystem::permissions(job_.node_dir(rank), std::filesystem::perms(01777));
  replicate();
  EXPECT_EQ(cached(replicate()), (std::vector<bool>{true, true, true, true}));
  job_.expect_all_copies_of(source_);
}

}  // namespace
}  // namespace imgcast::test
