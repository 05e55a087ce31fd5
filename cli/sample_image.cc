#include "cli/sample_image.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <vector>

#include "replicator/errors.h"
#include "replicator/unique_fd.h"

namespace imgcast::cli {

namespace fs = std::filesystem;
using replicator::TransferError;
using replicator::UniqueFd;

namespace {

void write_random_file(const fs::path& path, std::uint64_t bytes, std::uint64_t seed) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  std::mt19937_64 random(seed);
  std::vector<std::uint64_t> block(1 << 17);  // 1 MiB
  while (bytes > 0 && out) {
    for (auto& word : block) {
      word = random();
    }
    const std::uint64_t n = std::min<std::uint64_t>(bytes, block.size() * sizeof(std::uint64_t));
    out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(n));
    bytes -= n;
  }
  if (!out) {
    throw TransferError(fmt::format("cannot write the sample image {}", path.string()));
  }
}

std::string find_mksquashfs() {
  for (const char* dir : {"/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"}) {
    const fs::path candidate = fs::path(dir) / "mksquashfs";
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return {};
}

bool run_quietly(const std::vector<std::string>& argv) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    std::vector<char*> raw;
    for (const auto& a : argv)
      raw.push_back(const_cast<char*>(a.c_str()));
    raw.push_back(nullptr);
    ::execv(raw[0], raw.data());
    ::_exit(127);
  }
  int status = 0;
  return pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
}

}  // namespace

SampleImage make_sample_image(const fs::path& dir, std::uint64_t bytes) {
  if (const std::string mksquashfs = find_mksquashfs(); !mksquashfs.empty() && bytes >= (1 << 20)) {
    // A small tree of incompressible files, packed uncompressed: a real SquashFS image of about
    // the requested size, built in well under a second per 100 MB.
    const fs::path tree = dir / "sample-rootfs";
    fs::create_directories(tree / "opt" / "app");
    const std::uint64_t file_bytes = 8 << 20;
    std::uint64_t left = bytes - std::min<std::uint64_t>(bytes, 64 << 10);
    for (int i = 0; left > 0; ++i) {
      const std::uint64_t n = std::min(left, file_bytes);
      write_random_file(tree / "opt" / "app" / fmt::format("data{:04}.bin", i), n, 1000 + i);
      left -= n;
    }
    std::ofstream(tree / "opt" / "app" / "README") << "imgcast demo image\n";
    const fs::path image = dir / "sample.sqfs";
    if (run_quietly({mksquashfs, tree.string(), image.string(), "-noappend", "-noI", "-noD", "-noF",
                     "-noX", "-no-progress", "-quiet"})) {
      fs::remove_all(tree);
      return {image, "squashfs"};
    }
    fs::remove_all(tree);
  }
  const fs::path image = dir / "sample.img";
  write_random_file(image, bytes, 42);
  return {image, "random bytes"};
}

bool same_contents(const fs::path& a, const fs::path& b) {
  UniqueFd fa(::open(a.c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd fb(::open(b.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat sa {
  }, sb{};
  if (!fa.valid() || !fb.valid() || ::fstat(fa.get(), &sa) != 0 || ::fstat(fb.get(), &sb) != 0 ||
      sa.st_size != sb.st_size) {
    return false;
  }
  const auto size = static_cast<std::size_t>(sa.st_size);
  if (size == 0) {
    return true;
  }
  void* ma = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fa.get(), 0);
  void* mb = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fb.get(), 0);
  const bool same = ma != MAP_FAILED && mb != MAP_FAILED && std::memcmp(ma, mb, size) == 0;
  if (ma != MAP_FAILED)
    ::munmap(ma, size);
  if (mb != MAP_FAILED)
    ::munmap(mb, size);
  return same;
}

}  // namespace imgcast::cli
