#include "replicator/image/file_trust.h"

#include <fmt/format.h>
#include <unistd.h>

namespace imgcast::replicator {

std::optional<std::string> directory_distrust(const struct stat& dir) {
  if (!S_ISDIR(dir.st_mode))
    return std::string("is not a directory");
  // Root owns /tmp and /var/tmp; any other owner but us could rename our files away.
  if (dir.st_uid != ::geteuid() && dir.st_uid != 0)
    return fmt::format("belongs to uid {}, not to us (uid {})", dir.st_uid, ::geteuid());
  if ((dir.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (dir.st_mode & S_ISVTX) == 0)
    return fmt::format("is writable by others without the sticky bit (mode {:o})",
                       dir.st_mode & 07777);
  return std::nullopt;
}

std::optional<std::string> file_distrust(const struct stat& file) {
  if (!S_ISREG(file.st_mode))
    return std::string("is not a regular file");
  // Compared with the effective uid, not 0: tests run as root, and root's own files must
  // still count as ours while a file planted by uid 65534 must not.
  if (file.st_uid != ::geteuid())
    return fmt::format("belongs to uid {}, not to us (uid {})", file.st_uid, ::geteuid());
  if ((file.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return fmt::format("is writable by group or others (mode {:o})", file.st_mode & 07777);
  return std::nullopt;
}

}  // namespace imgcast::replicator
