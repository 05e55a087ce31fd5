#include "replicator/image/available_memory.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace imgcast::replicator {

namespace fs = std::filesystem;

namespace {

// The first number in `path`; nullopt when it is missing or holds none ("max": no limit).
std::optional<std::uint64_t> read_number(const fs::path& path) {
  std::ifstream in(path);
  std::string word;
  if (!(in >> word) || word.empty() || word[0] < '0' || word[0] > '9')
    return std::nullopt;
  return std::strtoull(word.c_str(), nullptr, 10);
}

// The room left under the memory cgroup at `dir` and every cgroup above it, as far as `top`.
std::optional<std::uint64_t> cgroup_room(fs::path dir, const fs::path& top, const char* limit_file,
                                         const char* usage_file) {
  std::optional<std::uint64_t> room;
  for (;;) {
    const auto limit = read_number(dir / limit_file);
    const auto usage = read_number(dir / usage_file);
    if (limit && usage) {
      const std::uint64_t left = *limit > *usage ? *limit - *usage : 0;
      room = room ? std::min(*room, left) : left;
    }
    if (dir == top || !dir.has_parent_path() || dir.parent_path() == dir)
      return room;
    dir = dir.parent_path();
  }
}

// The memory cgroups this process is in (/proc/self/cgroup): v2's "0::PATH" and v1's
// "N:...memory...:PATH". A path the mount does not show (a cgroup namespace, a container's
// mount of its own cgroup as the root) is looked for at the mount's top instead.
std::optional<std::uint64_t> cgroups_room() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  std::optional<std::uint64_t> room;
  const auto take = [&room](std::optional<std::uint64_t> more) {
    if (more)
      room = room ? std::min(*room, *more) : *more;
  };
  while (std::getline(in, line)) {
    const std::size_t first = line.find(':');
    const std::size_t second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos)
      continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const fs::path path = fs::path(line.substr(second + 1)).relative_path();
    if (line.compare(0, 2, "0:") == 0 && controllers.empty()) {
      const fs::path top = "/sys/fs/cgroup";
      const fs::path dir = fs::exists(top / path / "memory.max") ? top / path : top;
      take(cgroup_room(dir, top, "memory.max", "memory.current"));
    } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
      const fs::path top = "/sys/fs/cgroup/memory";
      const fs::path dir = fs::exists(top / path / "memory.limit_in_bytes") ? top / path : top;
      take(cgroup_room(dir, top, "memory.limit_in_bytes", "memory.usage_in_bytes"));
    }
  }
  return room;
}

}  // namespace

std::optional<std::uint64_t> available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::optional<std::uint64_t> available;
  std::string rest;
  while (meminfo >> key >> kib && std::getline(meminfo, rest)) {
    if (key == "MemAvailable:") {
      available = kib * 1024;
      break;
    }
  }
  if (!available)
    return std::nullopt;
  const auto room = cgroups_room();
  return room ? std::min(*available, *room) : *available;
}

}  // namespace imgcast::replicator
