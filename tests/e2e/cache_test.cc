// The node-local cache end to end: a second run skips every node and never reads the source; a
// missing or changed copy is sent to its node alone; a changed source is never taken for
// cached; --force sends anyway; a cached copy that lies about its content fails its node.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <utime.h>

#include <fstream>
#include <nlohmann/json.hpp>

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

TEST_F(CacheTest, ACachedCopyWhoseDigestLiesFailsItsNode) {
  replicate();
  // Rank 1's record now claims another digest; the root's own copy is gone, so the source is
  // read and the transfer's digest confirms (or here, refutes) rank 1's claim.
  char value[512] = {};
  const ssize_t n = ::getxattr(job_.copy(1).c_str(), "user.imgcast.cache", value, sizeof value);
  ASSERT_GT(n, 0);
  std::string record(value, static_cast<std::size_t>(n));
  const std::size_t digest_at = record.find(' ', record.find(' ', record.find(' ', 15) + 1) + 1);
  record.replace(digest_at + 1, 32, std::string(32, '0'));
  ASSERT_EQ(::setxattr(job_.copy(1).c_str(), "user.imgcast.cache", record.data(), record.size(), 0),
            0);
  std::filesystem::remove(job_.copy(0));
  std::vector<std::string> argv = job_.command(source_, {"--json"});
  const ProcessResult result = run(argv, 60s);
  EXPECT_EQ(result.exit_code, 3) << result.err;
  const auto report = nlohmann::json::parse(result.out);
  EXPECT_FALSE(report.at("nodes").at(1).at("verified").get<bool>());
  EXPECT_NE(report.at("nodes").at(1).at("failure").get<std::string>().find("--force"),
            std::string::npos);
}

}  // namespace
}  // namespace imgcast::test
