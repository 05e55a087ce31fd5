// Error and warning lines name a few hosts, not all of them: at 2,000 nodes a line listing
// every failed host is a thousand names long and hides the reason. --json keeps the full list.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace imgcast::replicator {

inline constexpr std::size_t kNamedHosts = 10;

// "a, b, c" or, past `at_most`, "a, b, ..., j and 990 more".
std::string name_at_most(const std::vector<std::string>& names, std::string_view separator = ", ",
                         std::size_t at_most = kNamedHosts);

}  // namespace imgcast::replicator
