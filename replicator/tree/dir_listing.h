// The names in one open directory, read in one go. Shared by the root's walk and the safe
// recursive remove: both list a directory they hold by fd, never by path.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace imgcast::replicator {

// Every name in the directory open as `dir_fd` except "." and "..", sorted bytewise (the tree's
// deterministic order). The caller's fd is left open and unmoved: the listing works on a
// duplicate that is closed before returning. nullopt with errno set when it cannot be read.
std::optional<std::vector<std::string>> list_directory(int dir_fd);

}  // namespace imgcast::replicator
