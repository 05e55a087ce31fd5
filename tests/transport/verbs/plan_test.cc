// Chunk -> WR mapping, control fragmentation and device selection of the verbs backend: the
// parts of the data path that are arithmetic, checked without a device.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "transport/error.h"
#include "transport/verbs/control_assembler.h"
#include "transport/verbs/device_spec.h"
#include "transport/verbs/rdma_wire.h"
#include "transport/verbs/region_key.h"
#include "transport/verbs/write_plan.h"

namespace imgcast::transport::verbs {
namespace {

const std::vector<std::uint32_t> kSourceKeys = {100, 101, 102, 103, 104, 105, 106, 107};
const std::vector<std::uint32_t> kTargetKeys = {200, 201, 202, 203, 204, 205, 206, 207};

MrLayout layout(std::uint64_t base, std::uint64_t segment, const std::vector<std::uint32_t>& keys) {
  return {base, segment * keys.size(), segment, keys};
}

TEST(WritePlan, AWriteInsideOneMrOnBothSidesIsOneWr) {
  std::vector<WrPiece> out;
  plan_write(layout(0x1000, 1 << 20, kSourceKeys), 10, layout(0x900000, 1 << 20, kTargetKeys), 20,
             4096, 1u << 31, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], (WrPiece{0x1000 + 10, 100, 0x900000 + 20, 200, 4096}));
}

TEST(WritePlan, SplitsWhereEitherSideCrossesAnMr) {
  // Source segments of 1 MiB, target segments of 1.5 MiB: 3 MiB from offset 0.5 MiB crosses
  // source boundaries at 1, 2, 3 MiB and a target boundary at 1.5 and 3 MiB.
  constexpr std::uint64_t kMiB = 1 << 20;
  std::vector<WrPiece> out;
  plan_write(layout(0, kMiB, kSourceKeys), kMiB / 2, layout(0, 3 * kMiB / 2, kTargetKeys), kMiB / 2,
             3 * kMiB, 1u << 31, out);
  // Cuts at 1, 1.5, 2 and 3 MiB: five WRs.
  ASSERT_EQ(out.size(), 5u);
  const std::vector<std::uint64_t> lengths = {kMiB / 2, kMiB / 2, kMiB / 2, kMiB, kMiB / 2};
  const std::vector<std::uint32_t> lkeys = {100, 101, 101, 102, 103};
  const std::vector<std::uint32_t> rkeys = {200, 200, 201, 201, 202};
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].length, lengths[i]) << i;
    EXPECT_EQ(out[i].lkey, lkeys[i]) << i;
    EXPECT_EQ(out[i].rkey, rkeys[i]) << i;
  }
  EXPECT_EQ(out[3].local_addr, 2 * kMiB);
  EXPECT_EQ(out[3].remote_addr, 2 * kMiB);
}

// Every plan for random ranges: contiguous, covering, never crossing an MR or max_piece.
TEST(WritePlan, RandomRangesAreCoveredExactlyWithinMrsAndPieceLimit) {
  std::mt19937_64 random(3);
  for (int i = 0; i < 5000; ++i) {
    const std::uint64_t s_segment = 4096 * (1 + random() % 64);
    const std::uint64_t t_segment = 4096 * (1 + random() % 64);
    const MrLayout source = layout(0x10000000, s_segment, kSourceKeys);
    const MrLayout target = layout(0x7f0000000000, t_segment, kTargetKeys);
    const std::uint64_t limit = std::min(source.length, target.length);
    const auto length = static_cast<std::uint32_t>(1 + random() % (limit - 1));
    const std::uint64_t s_off = random() % (source.length - length + 1);
    const std::uint64_t t_off = random() % (target.length - length + 1);
    const std::uint32_t max_piece = 1 + random() % (1 << 20);
    std::vector<WrPiece> out;
    plan_write(source, s_off, target, t_off, length, max_piece, out);
    std::uint64_t covered = 0;
    for (const WrPiece& p : out) {
      ASSERT_GT(p.length, 0u);
      ASSERT_LE(p.length, max_piece);
      ASSERT_EQ(p.local_addr, source.base + s_off + covered);
      ASSERT_EQ(p.remote_addr, target.base + t_off + covered);
      const std::uint64_t s_first = (p.local_addr - source.base) / s_segment;
      const std::uint64_t s_last = (p.local_addr - source.base + p.length - 1) / s_segment;
      const std::uint64_t t_first = (p.remote_addr - target.base) / t_segment;
      const std::uint64_t t_last = (p.remote_addr - target.base + p.length - 1) / t_segment;
      ASSERT_EQ(s_first, s_last) << "a WR spans two source MRs";
      ASSERT_EQ(t_first, t_last) << "a WR spans two target MRs";
      ASSERT_EQ(p.lkey, kSourceKeys[s_first]);
      ASSERT_EQ(p.rkey, kTargetKeys[t_first]);
      covered += p.length;
    }
    ASSERT_EQ(covered, length);
  }
}

TEST(WritePlan, MaxMessageSizeCutsALongWrite) {
  const std::vector<std::uint32_t> one = {9};
  std::vector<WrPiece> out;
  plan_write({0, 1ULL << 33, 1ULL << 33, one}, 0, {0, 1ULL << 33, 1ULL << 33, one}, 0, 0xffffffffu,
             1u << 31, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].length, 1u << 31);
  EXPECT_EQ(out[1].length, 0xffffffffu - (1u << 31));
}

TEST(ControlAssembler, RebuildsFragmentedMessagesInOrder) {
  ControlAssembler assembler(1 << 20);
  const std::vector<std::byte> a(5000, std::byte{1}), b(3000, std::byte{2});
  EXPECT_EQ(assembler.add(kFirstFragment, std::span(a).first(4000)),
            ControlAssembler::Result::kNeedMore);
  EXPECT_EQ(assembler.add(kLastFragment, std::span(a).subspan(4000)),
            ControlAssembler::Result::kComplete);
  EXPECT_EQ(assembler.take(), a);
  EXPECT_EQ(assembler.add(kFirstFragment | kLastFragment, b), ControlAssembler::Result::kComplete);
  EXPECT_EQ(assembler.take(), b);
  EXPECT_EQ(assembler.add(kFirstFragment | kLastFragment, {}), ControlAssembler::Result::kComplete);
  EXPECT_TRUE(assembler.take().empty());
  EXPECT_EQ(fragments_for(0, 4096), 1u);
  EXPECT_EQ(fragments_for(4096, 4096), 1u);
  EXPECT_EQ(fragments_for(4097, 4096), 2u);
  EXPECT_EQ(fragments_for(1 << 20, 8184), 129u);
}

TEST(ControlAssembler, RejectsOutOfSequenceAndOversizedMessages) {
  const std::vector<std::byte> f(100, std::byte{3});
  ControlAssembler continuation(1000);
  EXPECT_EQ(continuation.add(kLastFragment, f), ControlAssembler::Result::kMalformed);
  ControlAssembler nested(1000);
  ASSERT_EQ(nested.add(kFirstFragment, f), ControlAssembler::Result::kNeedMore);
  EXPECT_EQ(nested.add(kFirstFragment, f), ControlAssembler::Result::kMalformed);
  EXPECT_EQ(nested.add(kLastFragment, f), ControlAssembler::Result::kMalformed);  // stays broken
  ControlAssembler small(150);
  ASSERT_EQ(small.add(kFirstFragment, f), ControlAssembler::Result::kNeedMore);
  EXPECT_EQ(small.add(kLastFragment, f), ControlAssembler::Result::kMalformed);
}

TEST(DeviceSpec, ParsesDeviceAndPort) {
  EXPECT_EQ(DeviceSpec::parse("mlx5_0:1")->device, "mlx5_0");
  EXPECT_EQ(DeviceSpec::parse("mlx5_0:1")->port, 1);
  EXPECT_EQ(DeviceSpec::parse("rxe0")->port, 0);
  EXPECT_EQ(DeviceSpec::parse("hfi1_0:255")->port, 255);
  EXPECT_EQ(DeviceSpec::parse("mlx5_0:2")->to_string(), "mlx5_0:2");
  for (const char* bad : {"", ":1", "mlx5_0:", "mlx5_0:0", "mlx5_0:256", "mlx5_0:1x", "mlx5_0:-1",
                          "../etc:1", "..", "a b", "mlx5_0:1:2", "mlx5_0:0001"}) {
    EXPECT_FALSE(DeviceSpec::parse(bad)) << bad;
  }
  EXPECT_FALSE(DeviceSpec::parse(std::string(64, 'a')));
}

TEST(DeviceSpec, EnvironmentVariableSelectsOrFailsNamingIt) {
  ::setenv(kDeviceEnvironmentVariable, "mlx5_1:2", 1);
  EXPECT_EQ(device_spec_from_environment().to_string(), "mlx5_1:2");
  ::setenv(kDeviceEnvironmentVariable, "mlx5_1:x", 1);
  try {
    (void)device_spec_from_environment();
    ADD_FAILURE() << "a malformed IMGCAST_RDMA_DEVICE was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(kDeviceEnvironmentVariable), std::string::npos);
  }
  ::unsetenv(kDeviceEnvironmentVariable);
  EXPECT_EQ(device_spec_from_environment().to_string(), "any device");
}

TEST(DeviceSpec, NumaNodeComesFromSysfs) {
  const auto root =
      std::filesystem::temp_directory_path() / ("imgcast-sysfs-" + std::to_string(::getpid()));
  const auto write = [&](const std::string& device, const std::string& text) {
    const auto dir = root / "class" / "infiniband" / device / "device";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "numa_node") << text;
  };
  write("mlx5_0", "1\n");
  write("mlx5_1", "-1\n");  // the kernel's "no affinity"
  write("mlx5_2", "banana\n");
  EXPECT_EQ(device_numa_node("mlx5_0", root), 1);
  EXPECT_EQ(device_numa_node("mlx5_1", root), -1);
  EXPECT_EQ(device_numa_node("mlx5_2", root), -1);
  EXPECT_EQ(device_numa_node("mlx5_9", root), -1);  // no such device
  EXPECT_EQ(device_numa_node("../../x", root), -1);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace imgcast::transport::verbs
