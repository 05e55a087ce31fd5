#include "cli/launch/hostlist.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdint>

#include "replicator/errors.h"

namespace imgcast::cli::launch {

namespace {

using replicator::InputError;

[[noreturn]] void fail(std::string_view origin, std::string_view expression,
                       std::string_view fault) {
  throw InputError(fmt::format("{} '{}' is not a valid host list: {} (expected e.g. "
                               "node[001-004,007],gpu[1-2])",
                               origin, expression, fault));
}

// One element of a bracket group: "7", "001-004".
struct NumberRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::size_t width = 0;  // zero padding: the digits of `first` when it starts with 0
};

std::uint64_t parse_number(std::string_view digits, std::string_view origin,
                           std::string_view expression) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() ||
      digits.size() > 18) {
    fail(origin, expression, fmt::format("'{}' is not a number", digits));
  }
  return value;
}

std::vector<NumberRange> parse_group(std::string_view group, std::string_view origin,
                                     std::string_view expression) {
  if (group.empty()) {
    fail(origin, expression, "an empty [] group");
  }
  std::vector<NumberRange> ranges;
  std::size_t start = 0;
  while (start <= group.size()) {
    const std::size_t comma = std::min(group.find(',', start), group.size());
    const std::string_view item = group.substr(start, comma - start);
    const std::size_t dash = item.find('-');
    NumberRange range;
    const std::string_view low = item.substr(0, dash);
    range.first = parse_number(low, origin, expression);
    range.last = dash == std::string_view::npos
                     ? range.first
                     : parse_number(item.substr(dash + 1), origin, expression);
    if (range.last < range.first) {
      fail(origin, expression, fmt::format("the range '{}' runs backwards", item));
    }
    range.width = low.size() > 1 && low.front() == '0' ? low.size() : 0;
    ranges.push_back(range);
    start = comma + 1;
  }
  return ranges;
}

// Expands one name with any number of bracket groups into `out`.
void expand_name(std::string_view name, std::string_view origin, std::string_view expression,
                 std::vector<std::string>& out) {
  if (name.empty()) {
    fail(origin, expression, "an empty host name");
  }
  // The partial names built so far; each group multiplies them.
  std::vector<std::string> partial{std::string()};
  std::size_t at = 0;
  while (at < name.size()) {
    const std::size_t open = name.find('[', at);
    const std::string_view literal = name.substr(at, open - at);
    if (literal.find(']') != std::string_view::npos) {
      fail(origin, expression, "a ']' without its '['");
    }
    for (auto& p : partial)
      p += literal;
    if (open == std::string_view::npos)
      break;
    const std::size_t close = name.find(']', open);
    if (close == std::string_view::npos) {
      fail(origin, expression, "a '[' without its ']'");
    }
    const std::string_view group = name.substr(open + 1, close - open - 1);
    if (group.find('[') != std::string_view::npos) {
      fail(origin, expression, "nested brackets");
    }
    const std::vector<NumberRange> ranges = parse_group(group, origin, expression);
    std::uint64_t count = 0;
    for (const auto& r : ranges)
      count += r.last - r.first + 1;
    if (count * partial.size() + out.size() > kMaxHosts) {
      fail(origin, expression, fmt::format("it names more than {} hosts", kMaxHosts));
    }
    std::vector<std::string> next;
    next.reserve(partial.size() * count);
    for (const auto& p : partial) {
      for (const auto& r : ranges) {
        for (std::uint64_t n = r.first; n <= r.last; ++n) {
          next.push_back(fmt::format("{}{:0{}}", p, n, r.width));
        }
      }
    }
    partial = std::move(next);
    at = close + 1;
  }
  for (auto& p : partial)
    out.push_back(std::move(p));
}

}  // namespace

std::vector<std::string> expand_hostlist(std::string_view expression, std::string_view origin) {
  if (expression.find_first_not_of(" \t\n") == std::string_view::npos) {
    fail(origin, expression, "it is empty");
  }
  std::vector<std::string> hosts;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= expression.size(); ++i) {
    const char c = i < expression.size() ? expression[i] : ',';
    if (c == '[') {
      ++depth;
    } else if (c == ']') {
      --depth;
    } else if (i == expression.size() || (c == ',' && depth <= 0)) {
      expand_name(expression.substr(start, i - start), origin, expression, hosts);
      start = i + 1;
      depth = 0;
    }
  }
  return hosts;
}

}  // namespace imgcast::cli::launch
