// Micro benchmarks of the root's own copy: each chunk of the source goes into the root's
// staging mapping before it is hashed and sent. On tmpfs this copy is a third of the root's
// CPU in a loopback transfer (docs/perf.md), so the ways to make it are measured side by side:
// ImageSource::read (pread, what the root does), memcpy from a read-only mapping of the source,
// and copy_file_range into the staging file (in-kernel, what "make the root's copy off the
// critical path" would use). Source and staging are 256 MiB files in /dev/shm (beyond the
// last-level cache), the staging mapping prefaulted as StagedImage::prefault() does.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "replicator/plan/chunk_plan.h"
#include "replicator/image/image_source.h"

namespace imgcast {
namespace {

constexpr std::size_t kImageBytes = 256u << 20;
constexpr std::uint32_t kChunkBytes = 512u << 10;

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

// A source file and a staging file in /dev/shm, removed at the end of the case.
struct Files {
  Files() {
    const std::string base = "/dev/shm/imgcast-micro-" + std::to_string(::getpid());
    source_path = base + ".src";
    staging_path = base + ".dst";
    std::vector<char> block(1 << 20);
    std::mt19937_64 random(1);
    for (auto& c : block)
      c = static_cast<char>(random());
    const int source = ::open(source_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    for (std::size_t at = 0; at < kImageBytes; at += block.size())
      (void)!::write(source, block.data(), block.size());
    ::close(source);
    staging = ::open(staging_path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    (void)::fallocate(staging, 0, 0, kImageBytes);
    map = static_cast<std::byte*>(
        ::mmap(nullptr, kImageBytes, PROT_READ | PROT_WRITE, MAP_SHARED, staging, 0));
    (void)::madvise(map, kImageBytes, MADV_POPULATE_WRITE);
  }
  ~Files() {
    ::munmap(map, kImageBytes);
    ::close(staging);
    std::filesystem::remove(source_path);
    std::filesystem::remove(staging_path);
  }
  std::string source_path;
  std::string staging_path;
  int staging = -1;
  std::byte* map = nullptr;
};

void set_rate(benchmark::State& state) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kImageBytes);
}

// What the root does now: ImageSource::read (pread) of each chunk into the staging mapping.
void BM_RootCopyPread(benchmark::State& state) {
  Files files;
  const auto source = replicator::ImageSource::open(files.source_path);
  const replicator::ChunkPlan plan(kImageBytes, kChunkBytes);
  for (auto _ : state) {
    for (std::uint32_t i = 0; i < plan.count(); ++i) {
      const replicator::Chunk chunk = plan.at(i);
      source.read(chunk, {files.map + chunk.offset, chunk.length});
    }
    benchmark::ClobberMemory();
  }
  set_rate(state);
}
BENCHMARK(BM_RootCopyPread)->Unit(benchmark::kMillisecond)->UseRealTime();

// memcpy from a read-only mapping of the source. Mapped afresh each time, so every page's
// fault (16 pages at a time, fault-around; or MAP_POPULATE up front with populate:1) and the
// unmap count, as they would once per image.
void BM_RootCopyMmap(benchmark::State& state) {
  Files files;
  const int fd = ::open(files.source_path.c_str(), O_RDONLY);
  const int flags = MAP_SHARED | (state.range(0) != 0 ? MAP_POPULATE : 0);
  for (auto _ : state) {
    void* mapped = ::mmap(nullptr, kImageBytes, PROT_READ, flags, fd, 0);
    const auto* source = static_cast<const std::byte*>(mapped);
    for (std::size_t at = 0; at < kImageBytes; at += kChunkBytes)
      std::memcpy(files.map + at, source + at, kChunkBytes);
    benchmark::ClobberMemory();
    ::munmap(mapped, kImageBytes);
  }
  ::close(fd);
  set_rate(state);
}
BENCHMARK(BM_RootCopyMmap)
    ->ArgName("populate")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// copy_file_range from the source into the staging file, chunk by chunk (tmpfs: a splice).
void BM_RootCopyFileRange(benchmark::State& state) {
  Files files;
  const int fd = ::open(files.source_path.c_str(), O_RDONLY);
  for (auto _ : state) {
    for (std::size_t at = 0; at < kImageBytes; at += kChunkBytes) {
      loff_t in = static_cast<loff_t>(at), out = static_cast<loff_t>(at);
      for (std::size_t done = 0; done < kChunkBytes;) {
        const ssize_t n = ::copy_file_range(fd, &in, files.staging, &out, kChunkBytes - done, 0);
        if (n <= 0) {
          state.SkipWithError("copy_file_range failed");
          ::close(fd);
          return;
        }
        done += static_cast<std::size_t>(n);
      }
    }
  }
  ::close(fd);
  set_rate(state);
}
BENCHMARK(BM_RootCopyFileRange)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace imgcast
