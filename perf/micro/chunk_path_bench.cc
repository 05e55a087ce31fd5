// Micro benchmarks of the per-chunk work outside the kernel: the checksum every node computes
// per chunk, the whole-image hash, and the codecs on the control path. Regressions show here
// before they show in a transfer.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "replicator/image/integrity.h"
#include "replicator/protocol/messages.h"
#include "transport/region_descriptor.h"

namespace imgcast {
namespace {

std::vector<std::byte> random_bytes(std::size_t n) {
  std::vector<std::byte> out(n);
  std::mt19937_64 random(1);
  for (auto& b : out)
    b = static_cast<std::byte>(random());
  return out;
}

// xxh3-64 of one chunk (what a relay does before forwarding): bytes/s is the figure.
void BM_ChunkDigest(benchmark::State& state) {
  const auto chunk = random_bytes(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(replicator::chunk_digest(chunk));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_ChunkDigest)->Arg(64 << 10)->Arg(512 << 10)->Arg(1 << 20)->Arg(4 << 20);

// What every node does per chunk in order: xxh3-64 of the chunk and the image's xxh3-128 in one
// pass (ImageHasher::update_and_digest_chunk), at the automatic chunk size for fast links.
void BM_ChunkAndImageDigest(benchmark::State& state) {
  const auto chunk = random_bytes(static_cast<std::size_t>(state.range(0)));
  replicator::ImageHasher hasher;
  for (auto _ : state) {
    benchmark::DoNotOptimize(hasher.update_and_digest_chunk(chunk));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_ChunkAndImageDigest)->Arg(512 << 10);

// Streaming xxh3-128 fed chunk by chunk (the whole-image digest).
void BM_ImageDigest(benchmark::State& state) {
  const auto chunk = random_bytes(4 << 20);
  for (auto _ : state) {
    replicator::ImageHasher hasher;
    for (int i = 0; i < 16; ++i)
      hasher.update(chunk);
    benchmark::DoNotOptimize(hasher.digest());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 16 * (4 << 20));
}
BENCHMARK(BM_ImageDigest);

void BM_RegionDescriptorDecode(benchmark::State& state) {
  transport::RegionDescriptor d;
  d.region_id = 3;
  d.length = 1ull << 32;
  d.key.assign(8, std::byte{7});
  const auto bytes = d.encode();
  for (auto _ : state) {
    benchmark::DoNotOptimize(transport::RegionDescriptor::decode(bytes));
  }
}
BENCHMARK(BM_RegionDescriptorDecode);

void BM_PlanDecode(benchmark::State& state) {
  replicator::Plan plan;
  plan.image_bytes = 1ull << 32;
  plan.topology = "binomial";
  plan.destination = "/tmp/app.sif";
  plan.parents.push_back({1, std::vector<std::byte>(20, std::byte{'1'})});
  const auto bytes = replicator::encode(plan);
  for (auto _ : state) {
    benchmark::DoNotOptimize(replicator::decode(bytes));
  }
}
BENCHMARK(BM_PlanDecode);

}  // namespace
}  // namespace imgcast

BENCHMARK_MAIN();
