#include "replicator/tree/dir_listing.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

namespace imgcast::replicator {

namespace {
struct CloseDir {
  void operator()(DIR* dir) const noexcept { ::closedir(dir); }
};
}  // namespace

std::optional<std::vector<std::string>> list_directory(int dir_fd) {
  // fdopendir takes ownership of its fd and reads from its offset: a fresh duplicate, rewound,
  // keeps the caller's fd usable for the openat/fstatat calls that follow.
  const int copy = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return std::nullopt;
  std::unique_ptr<DIR, CloseDir> dir(::fdopendir(copy));
  if (!dir) {
    const int error = errno;
    ::close(copy);
    errno = error;
    return std::nullopt;
  }
  ::rewinddir(dir.get());
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    const dirent* entry = ::readdir(dir.get());
    if (entry == nullptr) {
      if (errno != 0) return std::nullopt;
      break;
    }
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  // std::string compares as unsigned bytes, so the order is the same on every machine and locale.
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace imgcast::replicator
