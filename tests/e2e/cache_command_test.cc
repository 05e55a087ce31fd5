// `imgcast cache` end to end: a cache filled by the library in this process (as a run fills it),
// then the real binary lists, removes, prunes, pins and unpins its entries; a cache directory
// of another user is refused; `list --hosts` gathers two hosts and names the ones that failed.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "replicator/cache/node_cache.h"
#include "tests/e2e/harness.h"
#include "tests/replicator/cache/cache_fixture.h"

namespace imgcast::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using replicator::EntryPin;
using replicator::NodeCache;
using replicator::test_cache::key;
using replicator::test_cache::kMiB;
using replicator::test_cache::stage;

class CacheCommandTest : public ::testing::Test {
 protected:
  std::filesystem::path cache_dir() const { return tmp_ / "cache"; }

  // imgcast cache SUB ARGS... --cache-dir DIR
  ProcessResult cache(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = {IMGCAST_BINARY, "cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--cache-dir", cache_dir().string()});
    return run(argv, 60s, env);
  }
  json cache_json(std::vector<std::string> args, int expected_exit = 0) {
    args.push_back("--json");
    const ProcessResult result = cache(args);
    EXPECT_EQ(result.exit_code, expected_exit) << result.err;
    return json::parse(result.out);  // stdout holds the document alone
  }
  static const json* entry(const json& entries, const EntryPin& pin) {
    for (const auto& e : entries) {
      if (e.at("digest") == pin.record().digest.to_hex())
        return &e;
    }
    return nullptr;
  }
  static std::string hex(const EntryPin& pin) { return pin.record().digest.to_hex(); }

  TempDir tmp_;
};

TEST_F(CacheCommandTest, ListShowsEveryEntryAsJsonAndAsATable) {
  NodeCache node = NodeCache::open(cache_dir());
  EntryPin used = stage(node, "job1", kMiB, 'a', key(1));  // held: in use by a "running job"
  EntryPin kept = stage(node, "job2", 2 * kMiB + 3, 'b', key(2));
  node.pin(hex(kept), "campaign");
  kept = EntryPin();

  const json doc = cache_json({"list"});
  EXPECT_EQ(doc.at("schema"), "imgcast.cache.list.v1");
  EXPECT_EQ(doc.at("cache_dir"), cache_dir().string());
  EXPECT_EQ(doc.at("total_bytes"), 3 * kMiB + 3);
  ASSERT_EQ(doc.at("entries").size(), 2u);
  const json* a = entry(doc.at("entries"), used);
  ASSERT_NE(a, nullptr) << doc.dump(2);
  EXPECT_EQ(a->at("bytes"), kMiB);
  EXPECT_EQ(a->at("in_use"), true);
  EXPECT_EQ(a->at("pins"), json::array());
  EXPECT_EQ(a->at("sources").at(0).at("path"), "/src/" + key(1));
  EXPECT_EQ(a->at("last_used_ns"), used.record().last_used_ns);
  EXPECT_EQ(a->at("added_ns"), used.record().added_ns);
  const std::string last_used = a->at("last_used");
  EXPECT_EQ(last_used.size(), 24u) << last_used;  // 2024-05-01T12:03:04.123Z
  EXPECT_EQ(last_used.back(), 'Z');
  const json& b = doc.at("entries").at(0) == *a ? doc.at("entries").at(1) : doc.at("entries").at(0);
  EXPECT_EQ(b.at("in_use"), false);
  EXPECT_EQ(b.at("pins"), json::array({"campaign"}));
  EXPECT_EQ(b.at("digest").get<std::string>().size(), 32u);

  // The table: short digests, in use, pins, sources, the total; the default directory from
  // $IMGCAST_CACHE_DIR.
  const ProcessResult table =
      run({IMGCAST_BINARY, "cache", "list"}, 60s, {"IMGCAST_CACHE_DIR=" + cache_dir().string()});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  for (const std::string& word :
       {std::string("DIGEST"), hex(used).substr(0, 12), std::string("campaign"),
        std::string("just now"), "/src/" + key(2), std::string("yes"),
        std::string("total: 2 entries, 3.0 MiB in ") + cache_dir().string()}) {
    EXPECT_NE(table.out.find(word), std::string::npos) << word << "\n" << table.out;
  }
  EXPECT_EQ(table.out.find(hex(used)), std::string::npos) << "whole digest in the table";
}

TEST_F(CacheCommandTest, RmRefusesAnEntryPinnedOrInUseAndRemovesByPrefix) {
  NodeCache node = NodeCache::open(cache_dir());
  const EntryPin used = stage(node, "job1", kMiB, 'a', key(1));
  const std::string pinned = hex(stage(node, "job2", kMiB, 'b', key(2)));
  const std::string free = hex(stage(node, "job3", kMiB, 'c', key(3)));
  node.pin(pinned, "keep");

  ProcessResult result = cache({"rm", pinned});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("imgcast: error: " + pinned + " is pinned (keep): unpin it first"),
            std::string::npos)
      << result.err;
  result = cache({"rm", hex(used).substr(0, 10)});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("in use by a running job"), std::string::npos) << result.err;
  result = cache({"rm", "ffffffffffffffffffffffffffffffff"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("no cache entry"), std::string::npos) << result.err;
  EXPECT_EQ(node.list().size(), 3u);

  const json doc = cache_json({"rm", free.substr(0, 8)});
  EXPECT_EQ(doc.at("schema"), "imgcast.cache.rm.v1");
  ASSERT_EQ(doc.at("removed").size(), 1u);
  EXPECT_EQ(doc.at("removed").at(0).at("digest"), free);
  EXPECT_EQ(doc.at("refused"), json::array());
  EXPECT_EQ(node.list().size(), 2u);

  // Several at once: the one that can go goes, the refused one is named, the exit says so.
  const std::string another = hex(stage(node, "job4", kMiB, 'd', key(4)));
  const json mixed = cache_json({"rm", another, pinned}, 1);
  EXPECT_EQ(mixed.at("removed").at(0).at("digest"), another);
  EXPECT_EQ(mixed.at("refused").at(0).at("digest"), pinned);
  EXPECT_EQ(node.list().size(), 2u);
}

TEST_F(CacheCommandTest, PruneEvictsLeastRecentlyUsedAndLeavesPinnedOnes) {
  NodeCache node = NodeCache::open(cache_dir());
  const std::string oldest = hex(stage(node, "job1", kMiB, 'a', key(1)));  // pinned by hand
  const std::string older = hex(stage(node, "job2", kMiB, 'b', key(2)));
  const std::string newer = hex(stage(node, "job3", kMiB, 'c', key(3)));
  node.pin(oldest, "keep");

  const json doc = cache_json({"prune", "--max", "2M"});
  EXPECT_EQ(doc.at("schema"), "imgcast.cache.prune.v1");
  ASSERT_EQ(doc.at("removed").size(), 1u) << doc.dump(2);
  EXPECT_EQ(doc.at("removed").at(0).at("digest"), older);
  EXPECT_EQ(doc.at("removed_bytes"), kMiB);
  EXPECT_EQ(doc.at("kept_bytes"), 2 * kMiB);
  std::vector<std::string> kept;
  for (const auto& e : doc.at("kept"))
    kept.push_back(e.at("digest"));
  EXPECT_EQ(kept, (std::vector<std::string>{oldest, newer}));

  // Down to nothing: the pinned one stays, and the text says why.
  const ProcessResult text = cache({"prune", "--max", "0"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("removed " + newer.substr(0, 12)), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("kept " + oldest.substr(0, 12) + " (1.0 MiB, pinned: keep)"),
            std::string::npos)
      << text.out;
  ASSERT_EQ(node.list().size(), 1u);

  // --older-than: an entry unused for longer goes (a second here, days in life).
  node.unpin(oldest, "keep");
  EXPECT_EQ(cache_json({"prune", "--older-than", "1h"}).at("removed").size(), 0u);
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(cache_json({"prune", "--older-than", "1s"}).at("removed").size(), 1u);
  EXPECT_TRUE(node.list().empty());
}

TEST_F(CacheCommandTest, PruneNeedsAGoalAndGoodUnits) {
  ProcessResult result = cache({"prune"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("--max SIZE"), std::string::npos) << result.err;
  result = cache({"prune", "--max", "10Q"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("--max '10Q' is not a size"), std::string::npos) << result.err;
  result = cache({"prune", "--older-than", "7"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("--older-than '7' is not a duration"), std::string::npos) << result.err;
}

TEST_F(CacheCommandTest, PinAndUnpinRoundTrip) {
  NodeCache node = NodeCache::open(cache_dir());
  const std::string digest = hex(stage(node, "job1", kMiB, 'a', key(1)));

  json doc = cache_json({"pin", digest.substr(0, 6), "--label", "campaign"});
  EXPECT_EQ(doc.at("schema"), "imgcast.cache.pin.v1");
  EXPECT_EQ(doc.at("digest"), digest);
  EXPECT_EQ(doc.at("pins"), json::array({"campaign"}));
  doc = cache_json({"pin", digest});  // the default label
  EXPECT_EQ(doc.at("pins"), json::array({"campaign", "manual"}));
  EXPECT_EQ(cache({"rm", digest}).exit_code, 1);

  doc = cache_json({"unpin", digest, "--label", "campaign"});
  EXPECT_EQ(doc.at("pins"), json::array({"manual"}));
  doc = cache_json({"unpin", digest});
  EXPECT_EQ(doc.at("pins"), json::array());
  ProcessResult again = cache({"unpin", digest});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("has no pin 'manual'"), std::string::npos) << again.err;
  again = cache({"pin", "0123abcd"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("no cache entry 0123abcd"), std::string::npos) << again.err;
  again = cache({"pin", digest, "--label", "a/b"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("bad pin label"), std::string::npos) << again.err;
  EXPECT_EQ(cache({"rm", digest}).exit_code, 0);
}

TEST_F(CacheCommandTest, ACacheDirectoryOfAnotherUserIsRefused) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root to give the directory to another user";
  { (void)NodeCache::open(cache_dir()); }
  ASSERT_EQ(::chown(cache_dir().c_str(), 65534, 65534), 0);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"list"}, {"prune", "--max", "0"}, {"rm", "00"}}) {
    const ProcessResult result = cache(args);
    EXPECT_EQ(result.exit_code, 4) << args.front() << ": " << result.err;
    EXPECT_NE(result.err.find("imgcast: error:"), std::string::npos) << result.err;
    EXPECT_TRUE(result.out.empty()) << result.out;
  }
}

// Hosts on this machine: 127.0.0.1 answers from its own cache (an rsh that sets its
// IMGCAST_CACHE_DIR), 127.0.0.2 refuses the connection like ssh, 127.0.0.3 never answers.
class CacheListHostsTest : public CacheCommandTest {
 protected:
  void SetUp() override {
    rsh_ = tmp_ / "fake-rsh";
    std::ofstream(rsh_) << "#!/bin/sh\n"
                           "case \"$1\" in\n"
                           "  127.0.0.2) echo \"ssh: connect to host $1 port 22: Connection "
                           "refused\" >&2; exit 255;;\n"
                           "  127.0.0.3) exec sleep 600;;\n"
                           "esac\n"
                           "IMGCAST_CACHE_DIR=\"$CACHES/$1\" exec /bin/sh -c \"$2\"\n";
    ::chmod(rsh_.c_str(), 0755);
  }
  ProcessResult list_hosts(const std::string& hosts, bool json_out) {
    std::vector<std::string> argv = {IMGCAST_BINARY, "cache",       "list",      "--hosts", hosts,
                                     "--rsh",        rsh_.string(), "--timeout", "2"};
    if (json_out)
      argv.push_back("--json");
    return run(argv, 60s, {"CACHES=" + tmp_.path().string()});
  }
  std::filesystem::path rsh_;
};

TEST_F(CacheListHostsTest, OneDocumentPerHostAndPartialWhenSomeFail) {
  NodeCache node = NodeCache::open(tmp_ / "127.0.0.1");
  const std::string digest = hex(stage(node, "job1", kMiB, 'a', key(1)));

  const ProcessResult result = list_hosts("127.0.0.1,127.0.0.2,127.0.0.3", true);
  EXPECT_EQ(result.exit_code, 3) << result.err;
  const json doc = json::parse(result.out);
  ASSERT_EQ(doc.size(), 3u) << doc.dump(2);
  const json& good = doc.at("127.0.0.1");
  EXPECT_EQ(good.at("cache_dir"), (tmp_ / "127.0.0.1").string());
  ASSERT_EQ(good.at("entries").size(), 1u);
  EXPECT_EQ(good.at("entries").at(0).at("digest"), digest);
  EXPECT_NE(doc.at("127.0.0.2").at("error").get<std::string>().find("Connection refused"),
            std::string::npos)
      << doc.dump(2);
  EXPECT_NE(doc.at("127.0.0.3").at("error").get<std::string>().find("no answer within 2 s"),
            std::string::npos)
      << doc.dump(2);
  EXPECT_NE(result.err.find("imgcast: error: 2 of 3 hosts failed: 127.0.0.2"), std::string::npos)
      << result.err;

  // The tables: one per host, a failed host's one line.
  const ProcessResult table = list_hosts("127.0.0.1,127.0.0.2", false);
  EXPECT_EQ(table.exit_code, 3) << table.err;
  for (const std::string& word :
       {std::string("== 127.0.0.1 =="), digest.substr(0, 12), std::string("total: 1 entry"),
        std::string("== 127.0.0.2 =="), std::string("error: ssh: connect to host 127.0.0.2")}) {
    EXPECT_NE(table.out.find(word), std::string::npos) << word << "\n" << table.out;
  }
}

TEST_F(CacheListHostsTest, EveryHostFailedIsAFailure) {
  const ProcessResult result = list_hosts("127.0.0.2,127.0.0.3", true);
  EXPECT_EQ(result.exit_code, 2) << result.err;
  const json doc = json::parse(result.out);
  EXPECT_TRUE(doc.at("127.0.0.2").contains("error"));
  EXPECT_TRUE(doc.at("127.0.0.3").contains("error"));
}

}  // namespace
}  // namespace imgcast::test
