// resident_kib(): how much of one of this process's mappings has page-table entries (its Rss in
// /proc/self/smaps), for tests of what maps pages (PageRunner) and what drops them
// (StagedImage::release_page_tables).
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <fstream>
#include <string>

namespace imgcast::replicator {

// The kilobytes of the mapping that starts at `start` with page-table entries; -1 when this
// process has no mapping starting there.
inline long resident_kib(const void* start) {
  std::ifstream smaps("/proc/self/smaps");
  const std::string prefix = fmt::format("{:x}-", reinterpret_cast<std::uintptr_t>(start));
  bool in_it = false;
  for (std::string line; std::getline(smaps, line);) {
    if (line.rfind(prefix, 0) == 0) {
      in_it = true;
    } else if (in_it && line.rfind("Rss:", 0) == 0) {
      return std::stol(line.substr(4));
    }
  }
  return -1;
}

}  // namespace imgcast::replicator
