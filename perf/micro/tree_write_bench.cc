// Micro benchmark of a node's tree placement (write_tree(), tree_writer.h): the CPU a node spends
// turning a received tree stream into files, which on the emulated cluster's 2 cores sets the
// floor of a tree transfer (docs/perf.md, "Directory trees"). The tree is environment-like:
// 100 directories of 200 files each (0-12 KiB, seeded), a symlink every tenth file, in /dev/shm
// so only the system calls and the copies are timed, not a disk. Run as root (perf/ runs so),
// the owners in the manifest are ours: what a user's own environment gives.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "replicator/tree/manifest.h"
#include "replicator/tree/tree_writer.h"
#include "replicator/unique_fd.h"

namespace imgcast {
namespace {

using replicator::TreeEntry;
using replicator::TreeEntryType;
using replicator::TreeManifest;

constexpr int kDirectories = 100;
constexpr int kFilesPerDirectory = 200;

TreeManifest environment_like(std::vector<std::byte>& data) {
  TreeManifest manifest;
  manifest.top.uid = ::geteuid();
  manifest.top.gid = ::getegid();
  std::mt19937_64 random(7);
  std::uniform_int_distribution<std::uint64_t> size(0, 12 << 10);
  for (int d = 0; d < kDirectories; ++d) {
    TreeEntry dir;
    dir.type = TreeEntryType::kDirectory;
    dir.path = "lib" + std::to_string(d);
    dir.mode = 0755;
    dir.uid = manifest.top.uid;
    dir.gid = manifest.top.gid;
    manifest.entries.push_back(dir);
    for (int f = 0; f < kFilesPerDirectory; ++f) {
      TreeEntry file;
      file.type = TreeEntryType::kFile;
      file.path = dir.path + "/mod" + std::to_string(f) + ".py";
      file.mode = f % 7 == 0 ? 0755 : 0644;
      file.mtime_ns = 1'700'000'000'000'000'000 + f;
      file.uid = manifest.top.uid;
      file.gid = manifest.top.gid;
      file.size = size(random);
      file.offset = manifest.data_bytes;
      manifest.data_bytes += file.size;
      manifest.entries.push_back(file);
      if (f % 10 == 0) {
        TreeEntry link = file;
        link.type = TreeEntryType::kSymlink;
        link.path += ".link";
        link.target = "mod" + std::to_string(f) + ".py";
        link.size = 0;
        link.offset = 0;
        link.mode = 0777;
        manifest.entries.push_back(link);
      }
    }
  }
  data.resize(manifest.data_bytes);
  for (auto& b : data) {
    b = static_cast<std::byte>(random());
  }
  return manifest;
}

void BM_WriteTree(benchmark::State& state) {
  std::vector<std::byte> data;
  const TreeManifest manifest = environment_like(data);
  const std::filesystem::path base =
      "/dev/shm/imgcast-tree-bench-" + std::to_string(::getpid());
  std::uint64_t files = 0;
  int round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::filesystem::path top = base / std::to_string(round++);
    std::filesystem::create_directories(top);
    replicator::UniqueFd fd(::open(top.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    state.ResumeTiming();
    replicator::TreeWriteOptions options;
    options.flush = replicator::TreeWriteOptions::Flush::kNone;  // tmpfs: nothing to write back
    const auto counts = replicator::write_tree(fd.get(), manifest, data, options);
    files += counts.files;
    state.PauseTiming();
    std::filesystem::remove_all(top);
    state.ResumeTiming();
  }
  std::filesystem::remove_all(base);
  state.counters["files/s"] =
      benchmark::Counter(static_cast<double>(files), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_WriteTree)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();

}  // namespace
}  // namespace imgcast
