// available_memory_bytes() against the real machine and a real memory cgroup.
#include "replicator/image/available_memory.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/replicator/image/memory_cgroup.h"

namespace imgcast::replicator {
namespace {

TEST(AvailableMemory, SomeMemoryIsAvailable) {
  const auto available = available_memory_bytes();
  ASSERT_TRUE(available.has_value()) << "no MemAvailable in /proc/meminfo";
  EXPECT_GT(*available, 0u);
}

TEST(AvailableMemory, AMemoryCgroupsLimitBoundsIt) {
  const MemoryCgroup cgroup(64 << 20);
  if (!cgroup.made())
    GTEST_SKIP() << "no memory cgroup to test in: " << cgroup.error();
  const std::string seen = cgroup.run([] {
    const auto available = available_memory_bytes();
    return available ? std::to_string(*available) : std::string("none");
  });
  ASSERT_NE(seen, "none");
  ASSERT_FALSE(seen.empty()) << "the child reported nothing";
  EXPECT_LE(std::stoull(seen), std::uint64_t{64} << 20)
      << "the cgroup's 64 MiB limit was not taken into account";
}

}  // namespace
}  // namespace imgcast::replicator
