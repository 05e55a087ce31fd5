// The node cache across processes: pins held by other processes, a pinner that dies, a stager
// that dies, and two stagers of one image at once. Real fork()ed processes, real flock()s.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <thread>

#include "replicator/cache/node_cache.h"
#include "replicator/errors.h"
#include "tests/replicator/cache/cache_fixture.h"
#include "tests/support/process.h"

namespace imgcast::replicator {
namespace {

namespace fs = std::filesystem;
using namespace test_cache;

// A child that opens the cache, runs `body`, writes one byte to say it got there, and then
// waits to be killed (or returns `body`'s verdict at once when !linger).
pid_t spawn(const fs::path& dir, int ready_fd, bool linger,
            const std::function<bool(NodeCache&)>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    bool ok = false;
    try {
      NodeCache cache = NodeCache::open(dir);
      ok = body(cache);
    } catch (...) {
      ok = false;
    }
    const char byte = ok ? 'y' : 'n';
    (void)!::write(ready_fd, &byte, 1);
    if (linger) {
      ::pause();
    }
    ::_exit(ok ? 0 : 1);
  }
  return pid;
}

char wait_ready(int fd) {
  char byte = 0;
  EXPECT_EQ(::read(fd, &byte, 1), 1);
  return byte;
}

int reap(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { EXPECT_EQ(::pipe(fds), 0); }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
};

TEST(NodeCacheProcesses, AnotherProcesssPinKeepsItsEntryUntilThatProcessDies) {
  test::TempDir tmp;
  const fs::path dir = tmp / "cache";
  NodeCache cache = NodeCache::open(dir);
  { (void)stage(cache, "j1", 2 * kMiB, '1', key(1)); }
  Pipe ready;
  const pid_t pinner = spawn(dir, ready.fds[1], /*linger=*/true, [](NodeCache& c) {
    static std::optional<EntryPin> pin;  // held until the process dies
    pin = c.find_by_source(key(1), 2 * kMiB);
    return pin.has_value();
  });
  ASSERT_EQ(wait_ready(ready.fds[0]), 'y');
  EXPECT_TRUE(cache.list().at(0).in_use);
  EXPECT_THROW((void)cache.admit(2 * kMiB, 3 * kMiB, "j2"), TransferError);
  EXPECT_TRUE(cache.prune(0, std::nullopt).empty());
  // SIGKILL: no cleanup runs, the kernel drops the flock with the process.
  ::kill(pinner, SIGKILL);
  reap(pinner);
  EXPECT_FALSE(cache.list().at(0).in_use);
  EXPECT_NO_THROW((void)cache.admit(2 * kMiB, 3 * kMiB, "j2"));
  EXPECT_TRUE(cache.list().empty());  // evicted to make room
}

TEST(NodeCacheProcesses, AStagerKilledMidCopyLeavesNothingTheNextAdmissionKeeps) {
  test::TempDir tmp;
  const fs::path dir = tmp / "cache";
  Pipe ready;
  const pid_t stager = spawn(dir, ready.fds[1], true, [](NodeCache& c) {
    static CacheReservation room;
    static std::optional<StagedImage> image;
    room = c.admit(2 * kMiB, 3 * kMiB, "dying");
    image.emplace(StagedImage::create(c.staging_path("dying"), 2 * kMiB, "dying", 0600));
    return true;
  });
  ASSERT_EQ(wait_ready(ready.fds[0]), 'y');
  NodeCache cache = NodeCache::open(dir);
  EXPECT_THROW((void)cache.admit(2 * kMiB, 3 * kMiB, "j2"), TransferError);  // it still counts
  ::kill(stager, SIGKILL);
  reap(stager);
  { (void)stage(cache, "j2", 2 * kMiB, '2', key(2), 3 * kMiB); }
  EXPECT_EQ(test::list_dir(dir / "staging"), std::vector<std::string>{});
}

TEST(NodeCacheProcesses, TwoStagersOfOneImageAtOnceLeaveOneWholeEntry) {
  test::TempDir tmp;
  const fs::path dir = tmp / "cache";
  Pipe ready;
  std::vector<pid_t> stagers;
  for (int i = 0; i < 4; ++i) {
    stagers.push_back(spawn(dir, ready.fds[1], false, [i](NodeCache& c) {
      const EntryPin pin = stage(c, fmt::format("job{}", i), 8 * kMiB, 's', key(7));
      return pin.record().digest == digest_of(8 * kMiB, 's');
    }));
  }
  for (const pid_t pid : stagers) {
    EXPECT_EQ(wait_ready(ready.fds[0]), 'y');
    const int status = reap(pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  NodeCache cache = NodeCache::open(dir);
  const auto entries = cache.list();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].record.sources.size(), 1u);  // one source key, recorded once
  const auto hit = cache.find_by_source(key(7), 8 * kMiB);
  ASSERT_TRUE(hit);
  test::TempDir out;
  std::string expected(8 * kMiB, 's');
  {
    std::ofstream(out / "expected", std::ios::binary).write(expected.data(), expected.size());
  }
  EXPECT_TRUE(test::files_equal(hit->path(), out / "expected"));
  EXPECT_EQ(test::list_dir(dir / "staging"), std::vector<std::string>{});
}

TEST(NodeCacheProcesses, EvictionRacingNewPinsNeverRemovesAPinnedEntry) {
  test::TempDir tmp;
  const fs::path dir = tmp / "cache";
  NodeCache cache = NodeCache::open(dir);
  { (void)stage(cache, "j0", kMiB, '0', key(0)); }
  const std::string pinned_hex = digest_of(kMiB, '0').to_hex();
  // A child pins and checks the entry over and over while we stage images that need its room.
  Pipe ready;
  const pid_t pinner = spawn(dir, ready.fds[1], false, [&](NodeCache& c) {
    for (int round = 0; round < 300; ++round) {
      const auto pin = c.find_by_digest(pinned_hex);
      if (!pin) {
        return true;  // evicted while no one held it: allowed; nothing more to race
      }
      if (!fs::exists(pin->path())) {
        return false;  // removed under a pin
      }
    }
    return true;
  });
  for (int i = 1; i < 30; ++i) {
    try {
      (void)stage(cache, fmt::format("j{}", i), kMiB, static_cast<char>('a' + i), key(i),
                  2 * kMiB);
    } catch (const TransferError&) {
      // in use right then: this node would fail alone; the race goes on
    }
  }
  EXPECT_EQ(wait_ready(ready.fds[0]), 'y');
  const int status = reap(pinner);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace imgcast::replicator
