#include "replicator/session/host_names.h"

#include <fmt/format.h>

namespace imgcast::replicator {

std::string name_at_most(const std::vector<std::string>& names, std::string_view separator,
                         std::size_t at_most) {
  std::string out;
  const std::size_t shown = names.size() <= at_most ? names.size() : at_most;
  for (std::size_t i = 0; i < shown; ++i) {
    if (i > 0)
      out += separator;
    out += names[i];
  }
  if (shown < names.size()) {
    out += fmt::format(" and {} more", names.size() - shown);
  }
  return out;
}

}  // namespace imgcast::replicator
