#include "replicator/image/destination.h"

#include <fmt/format.h>

#include "replicator/errors.h"

namespace imgcast::replicator {

std::string expand_destination(std::string_view pattern, int rank, std::string_view host) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%') {
      out.push_back(pattern[i]);
      continue;
    }
    if (i + 1 == pattern.size()) {
      throw InputError(fmt::format(
          "destination '{}' ends in a lone '%': use %r (rank), %h (host) or %%", pattern));
    }
    switch (pattern[++i]) {
      case 'r':
        out += std::to_string(rank);
        break;
      case 'h':
        out += host;
        break;
      case '%':
        out.push_back('%');
        break;
      default:
        throw InputError(
            fmt::format("destination '{}' has an unknown '%{}': use %r (rank), %h "
                        "(host) or %%",
                        pattern, pattern[i]));
    }
  }
  return out;
}

}  // namespace imgcast::replicator
