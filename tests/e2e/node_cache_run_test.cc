// The node cache across jobs end to end (`imgcast replicate --cache`): real imgcast processes on
// loopback "nodes", each with its own cache directory. A first run fills every cache and links
// DST to the entry; the next is all hits; the root serves from its entry when the source cannot
// be read; the budget evicts the least recently used entry and never a pinned one; a node whose
// cache cannot fit the image fails alone; two jobs staging one image at once leave one entry.
// Faults: the root SIGKILLed mid-transfer leaves no entry and the next run sweeps what it left;
// a cache on a file system too small for the image fails that node alone, leaving nothing.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "replicator/cache/node_cache.h"
#include "tests/e2e/agent_processes.h"
#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using replicator::NodeCache;

class NodeCacheRun : public ::testing::Test {
 protected:
  fs::path cache(int rank) const { return job_.dir / fmt::format("cache{}", rank); }
  std::string cache_pattern() const { return (job_.dir / "cache%r").string(); }

  std::vector<std::string> command(const fs::path& source, std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--cache", "--cache-dir", cache_pattern(), "--json"});
    return job_.command(source, extra);
  }
  nlohmann::json replicate(const fs::path& source, std::vector<std::string> extra = {},
                           int expect_exit = 0) {
    const ProcessResult result = run(command(source, std::move(extra)), 60s);
    EXPECT_EQ(result.exit_code, expect_exit) << result.err;
    return nlohmann::json::parse(result.out);
  }
  static std::vector<bool> cached(const nlohmann::json& report) {
    std::vector<bool> out;
    for (const auto& node : report.at("nodes")) {
      out.push_back(node.at("cached").get<bool>());
    }
    return out;
  }
  std::size_t entries(int rank) {
    return NodeCache::open(cache(rank)).list().size();
  }

  LocalJob job_{3};
};

ino_t inode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_ino;
}

TEST_F(NodeCacheRun, AFirstRunFillsEveryCacheAndTheNextIsAllHits) {
  const fs::path source = job_.dir / "app.sif";
  write_random_file(source, (4u << 20) + 5, 61);
  const auto first = replicate(source);
  EXPECT_EQ(cached(first), (std::vector<bool>{false, false, false}));
  job_.expect_all_copies_of(source);
  for (int rank = 0; rank < 3; ++rank) {
    const auto listed = NodeCache::open(cache(rank)).list();
    ASSERT_EQ(listed.size(), 1u) << rank;
    EXPECT_EQ(listed[0].record.sources.at(0).path, source.string());
    // DST is the entry itself (a hard link on this tmpfs), not a second copy of the bytes.
    EXPECT_EQ(inode_of(job_.copy(rank)),
              inode_of(cache(rank) / "entries" / listed[0].record.digest.to_hex()));
    EXPECT_EQ(list_dir(cache(rank) / "staging"), std::vector<std::string>{}) << rank;
  }
  // The job's DSTs are gone (a new job on the same nodes): every node places it from its cache.
  for (int rank = 0; rank < 3; ++rank) {
    fs::remove(job_.copy(rank));
  }
  const auto second = replicate(source);
  EXPECT_EQ(cached(second), (std::vector<bool>{true, true, true}));
  EXPECT_EQ(second.at("digest_xxh3_128"), first.at("digest_xxh3_128"));
  job_.expect_all_copies_of(source);
}

// With the root's own entry standing the link is not timed while the agents join (a run where
// every node has the image needs no figure); it is timed after the probes when one node misses.
TEST_F(NodeCacheRun, WithTheRootsEntryStandingTheLinkIsTimedOnlyWhenANodeNeedsTheImage) {
  const fs::path source = job_.dir / "app.sif";
  write_random_file(source, (2u << 20) + 9, 67);
  replicate(source);
  for (int rank = 0; rank < 3; ++rank) {
    fs::remove(job_.copy(rank));
  }
  const auto hits = replicate(source);
  EXPECT_EQ(cached(hits), (std::vector<bool>{true, true, true}));
  fs::remove_all(cache(2));
  fs::remove(job_.copy(2));
  const auto one_miss = replicate(source);
  EXPECT_EQ(cached(one_miss), (std::vector<bool>{true, true, false}));
  EXPECT_NE(one_miss.at("plan").get<std::string>().find("measured in"), std::string::npos)
      << one_miss.at("plan");
  job_.expect_all_copies_of(source);
}

TEST_F(NodeCacheRun, WithoutDstTheImageGoesIntoTheCachesAlone) {
  const fs::path source = job_.dir / "app.sif";
  write_random_file(source, 1u << 20, 62);
  std::vector<std::string> argv = {IMGCAST_BINARY, "replicate", "--cache", source.string(),
                                   "--cache-dir", cache_pattern(), "--hosts", host_list(3),
                                   "--rsh", "local", "--json"};
  const ProcessResult result = run(argv, 60s);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  for (int rank = 0; rank < 3; ++rank) {
    EXPECT_EQ(entries(rank), 1u);
    EXPECT_EQ(list_dir(job_.node_dir(rank)), std::vector<std::string>{}) << rank;
  }
}

TEST_F(NodeCacheRun, TheRootServesFromItsCacheWhenTheSourceCannotBeRead) {
  // As an ordinary user (root reads any file): uid 65534 owns the job's directories.
  const fs::path source = job_.dir / "app.sif";
  write_random_file(source, (2u << 20) + 3, 63);
  for (const fs::path& path : {job_.dir.path(), job_.node_dir(0), job_.node_dir(1),
                               job_.node_dir(2), source}) {
    ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0) << path;
  }
  const auto as_nobody = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    return run(argv, 60s);
  };
  const ProcessResult first = as_nobody(command(source));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  fs::remove_all(cache(1));
  fs::remove_all(cache(2));
  fs::remove(job_.copy(1));
  fs::remove(job_.copy(2));
  ASSERT_EQ(::chmod(source.c_str(), 0), 0);  // unreadable to its owner now
  const ProcessResult second = as_nobody(command(source));
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const auto report = nlohmann::json::parse(second.out);
  EXPECT_EQ(cached(report), (std::vector<bool>{true, false, false}));
  ASSERT_EQ(::chmod(source.c_str(), 0644), 0);
  job_.expect_all_copies_of(source);
}

TEST_F(NodeCacheRun, TheBudgetEvictsTheLeastRecentlyUsedAndNeverAPinnedEntry) {
  const std::uint64_t image = 2u << 20;
  std::vector<fs::path> sources;
  for (int i = 0; i < 4; ++i) {
    sources.push_back(job_.dir / fmt::format("img{}.sif", i));
    write_random_file(sources.back(), image, 70 + i);
  }
  const std::vector<std::string> budget = {"--cache-max", "5M"};  // two images fit, not three
  const auto a = replicate(sources[0], budget);
  const std::string a_digest = a.at("digest_xxh3_128");
  // Pinned by hand on rank 1 only: it must survive there, and may go elsewhere.
  NodeCache::open(cache(1)).pin(a_digest, "site");
  (void)replicate(sources[1], budget);
  (void)replicate(sources[2], budget);  // evicts img0 on ranks 0 and 2, img1 on rank 1
  for (int rank = 0; rank < 3; ++rank) {
    std::vector<std::string> held;
    for (const auto& entry : NodeCache::open(cache(rank)).list()) {
      held.push_back(entry.record.sources.at(0).path);
    }
    std::sort(held.begin(), held.end());
    const std::vector<std::string> want =
        rank == 1 ? std::vector<std::string>{sources[0].string(), sources[2].string()}
                  : std::vector<std::string>{sources[1].string(), sources[2].string()};
    EXPECT_EQ(held, want) << "rank " << rank;
  }
}

TEST_F(NodeCacheRun, ANodeWhoseCacheCannotFitTheImageFailsAlone) {
  const fs::path big = job_.dir / "big.sif";
  const fs::path next = job_.dir / "next.sif";
  write_random_file(big, 3u << 20, 80);
  write_random_file(next, 2u << 20, 81);
  const auto first = replicate(big, {"--cache-max", "4M"});
  NodeCache::open(cache(2)).pin(first.at("digest_xxh3_128").get<std::string>(), "keep");
  const auto report = replicate(next, {"--cache-max", "4M"}, /*expect_exit=*/3);
  const auto& nodes = report.at("nodes");
  EXPECT_TRUE(nodes.at(0).at("verified").get<bool>());
  EXPECT_TRUE(nodes.at(1).at("verified").get<bool>());
  EXPECT_FALSE(nodes.at(2).at("verified").get<bool>());
  EXPECT_NE(nodes.at(2).at("failure").get<std::string>().find("in use or pinned"),
            std::string::npos)
      << nodes.at(2).dump();
  EXPECT_EQ(list_dir(cache(2) / "staging"), std::vector<std::string>{});
}

TEST_F(NodeCacheRun, TwoJobsStagingOneImageAtOnceLeaveOneEntryPerNode) {
  const fs::path source = job_.dir / "app.sif";
  write_random_file(source, 8u << 20, 90);
  LocalJob other(3);  // the second job's DSTs; the same caches
  std::vector<std::string> second = other.command(source, {"--cache", "--cache-dir",
                                                           cache_pattern(), "--json"});
  Process one(command(source));
  Process two(second);
  const ProcessResult a = one.wait(60s);
  const ProcessResult b = two.wait(60s);
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(b.exit_code, 0) << b.err;
  for (int rank = 0; rank < 3; ++rank) {
    EXPECT_EQ(entries(rank), 1u) << rank;
    EXPECT_EQ(list_dir(cache(rank) / "staging"), std::vector<std::string>{}) << rank;
  }
  job_.expect_all_copies_of(source);
  other.expect_all_copies_of(source);
}


TEST_F(NodeCacheRun, TheRootKilledMidTransferLeavesNoEntryAndTheNextRunSweepsWhatItLeft) {
  const fs::path source = job_.dir / "app.sif";
  write_random_file(source, 256u << 20, 95);  // large enough to be in flight when the root dies
  // A budget for one image: a dead run's reservation still counted would make the next run fail.
  const std::vector<std::string> budget = {"--cache-max", "300M"};
  job_.log_level = "debug";  // wait_until_data_flows() reads the root's debug log
  std::vector<std::string> argv = command(source, budget);
  argv.insert(argv.end(), {"--topology", "chain", "--chunk-size", "256K"});
  Process replicate(argv);
  wait_until_data_flows(replicate);
  std::vector<pid_t> agents;
  for (int rank = 1; rank < 3; ++rank) {
    agents.push_back(find_agent(rank, replicate.pid()));
    EXPECT_GT(agents.back(), 0) << "rank " << rank << ": " << replicate.err_so_far();
  }
  ASSERT_EQ(::kill(replicate.pid(), SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  for (pid_t agent : agents) {  // each on its own: nobody signals them
    while (agent > 0 && running(agent) && std::chrono::steady_clock::now() < killed + 5s) {
      std::this_thread::sleep_for(2ms);
    }
  }
  const auto slowest = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed);
  for (pid_t agent : agents) {
    EXPECT_FALSE(agent > 0 && running(agent)) << "agent " << agent << " still runs 5 s on";
    if (agent > 0 && running(agent))
      ::kill(agent, SIGKILL);  // not left behind, whatever failed
  }
  (void)replicate.wait(5s);
  std::cerr << "agents gone " << slowest.count() << " ms after the root's SIGKILL\n";
  for (int rank = 0; rank < 3; ++rank) {
    // No entry, partial or whole: a copy enters entries/ only verified, and none was.
    EXPECT_EQ(list_dir(cache(rank) / "entries"), std::vector<std::string>{}) << rank;
    EXPECT_EQ(list_dir(job_.node_dir(rank)), std::vector<std::string>{}) << rank;
  }
  for (int rank : {1, 2}) {  // the agents removed their staging copy and reservation
    EXPECT_EQ(list_dir(cache(rank) / "staging"), std::vector<std::string>{}) << rank;
  }
  // The root's staging copy and reservation have nobody left to remove them.
  const std::vector<std::string> left = list_dir(cache(0) / "staging");
  const auto holds = [&](const std::string& part) {
    return std::any_of(left.begin(), left.end(),
                       [&](const std::string& name) { return name.find(part) != std::string::npos; });
  };
  EXPECT_TRUE(holds(".reserve") && holds(".imgcast-")) << ::testing::PrintToString(left);

  job_.log_level = "info";
  const auto again = run(command(source, budget), 120s);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("removed the stale cache reservation"), std::string::npos) << again.err;
  EXPECT_EQ(cached(nlohmann::json::parse(again.out)), (std::vector<bool>{false, false, false}));
  for (int rank = 0; rank < 3; ++rank) {
    EXPECT_EQ(entries(rank), 1u) << rank;
    EXPECT_EQ(list_dir(cache(rank) / "staging"), std::vector<std::string>{}) << rank;
  }
  job_.expect_all_copies_of(source);
}

// A small tmpfs mounted over a directory for one test, unmounted when it goes.
struct SmallTmpfs {
  SmallTmpfs(const fs::path& at, const char* options) : path(at) {
    fs::create_directories(at);
    if (::mount("tmpfs", at.c_str(), "tmpfs", 0, options) != 0)
      cannot_mount = std::strerror(errno);
  }
  ~SmallTmpfs() {
    if (cannot_mount.empty())
      ::umount(path.c_str());
  }
  fs::path path;
  std::string cannot_mount;  // empty when mounted
};

TEST_F(NodeCacheRun, ANodeWhoseCacheFileSystemIsTooSmallFailsAloneAndLeavesNothing) {
  const fs::path source = job_.dir / "app.sif";
  write_random_file(source, 4u << 20, 96);
  // Rank 2's cache directory is a 1 MiB tmpfs of its own (mode 0700: ours alone, as required).
  const SmallTmpfs small(cache(2), "size=1m,mode=0700");
  if (!small.cannot_mount.empty()) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << small.cannot_mount;
  }
  const auto report = replicate(source, {}, /*expect_exit=*/3);
  const auto& nodes = report.at("nodes");
  EXPECT_TRUE(nodes.at(0).at("verified").get<bool>());
  EXPECT_TRUE(nodes.at(1).at("verified").get<bool>());
  ASSERT_FALSE(nodes.at(2).at("verified").get<bool>());
  const std::string failure = nodes.at(2).at("failure").get<std::string>();
  EXPECT_EQ(failure.find('\n'), std::string::npos) << failure;
  EXPECT_NE(failure.find(fmt::format("the cache {} cannot take 4.0 MiB", cache(2).string())),
            std::string::npos)
      << failure;
  EXPECT_NE(failure.find("free on its file system"), std::string::npos) << failure;
  for (int rank : {0, 1}) {
    EXPECT_TRUE(files_equal(source, job_.copy(rank))) << rank;
    EXPECT_EQ(entries(rank), 1u) << rank;
  }
  EXPECT_EQ(list_dir(cache(2) / "entries"), std::vector<std::string>{});
  EXPECT_EQ(list_dir(cache(2) / "staging"), std::vector<std::string>{});
  EXPECT_EQ(list_dir(job_.node_dir(2)), std::vector<std::string>{});  // no DST, no temp file
}

}  // namespace
}  // namespace imgcast::test
