#include "cli/parse.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <set>

#include "replicator/errors.h"

namespace imgcast::cli {

using replicator::InputError;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

bool valid_host(std::string_view host) {
  return !host.empty() && host.size() <= 255 && host.front() != '-' &&
         std::all_of(host.begin(), host.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
                  c == ':';
         });
}

void check_hosts(const std::vector<std::string>& hosts, std::string_view where) {
  if (hosts.empty()) {
    throw InputError(fmt::format("{} names no hosts: give at least this host", where));
  }
  std::set<std::string> seen;
  for (const auto& host : hosts) {
    if (!valid_host(host)) {
      throw InputError(
          fmt::format("{}: '{}' is not a host name (letters, digits, '.', '-', "
                      "'_' and ':' only)",
                      where, host));
    }
    if (!seen.insert(host).second) {
      throw InputError(fmt::format("{} names host {} twice: list every host once", where, host));
    }
  }
}

}  // namespace

// Whole numbers only: sizes are chunk and buffer sizes, where "1.5G" would have to be rounded to
// some byte count the user did not type; "1536M" says it exactly.
std::uint64_t parse_size(std::string_view text, std::string_view what) {
  const std::string_view t = trim(text);
  auto bad = [&] {
    return InputError(fmt::format(
        "{} '{}' is not a size: use a whole number with an optional K, M, G or T suffix", what,
        text));
  };
  std::size_t digits = 0;
  while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits])))
    ++digits;
  if (digits == 0)
    throw bad();
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    const unsigned d = static_cast<unsigned>(t[i] - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - d) / 10)
      throw bad();
    value = value * 10 + d;
  }
  std::string suffix(t.substr(digits));
  std::transform(suffix.begin(), suffix.end(), suffix.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  unsigned shift = 0;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else {
    const char unit = suffix[0];
    const std::string rest = suffix.substr(1);
    if (rest != "" && rest != "B" && rest != "IB")
      throw bad();
    switch (unit) {
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      case 'T':
        shift = 40;
        break;
      default:
        throw bad();
    }
  }
  if (shift > 0 && value > (std::numeric_limits<std::uint64_t>::max() >> shift))
    throw bad();
  return value << shift;
}

std::chrono::seconds parse_duration(std::string_view text, std::string_view what) {
  const std::string_view t = trim(text);
  auto bad = [&] {
    return InputError(fmt::format(
        "{} '{}' is not a duration: use a whole number with a unit s, m, h, d or w (e.g. 12h, "
        "7d)",
        what, text));
  };
  std::size_t digits = 0;
  while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits])))
    ++digits;
  if (digits == 0 || digits > 12 || t.size() != digits + 1)
    throw bad();
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < digits; ++i)
    value = value * 10 + static_cast<unsigned>(t[i] - '0');
  std::uint64_t unit = 0;
  switch (std::tolower(static_cast<unsigned char>(t[digits]))) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    case 'w':
      unit = 7 * 86400;
      break;
    default:
      throw bad();
  }
  // 100 years: far beyond any cache's age, and well inside what nanoseconds since the epoch hold.
  constexpr std::uint64_t kMaxSeconds = 100ull * 366 * 86400;
  if (value == 0 || value > kMaxSeconds / unit)
    throw bad();
  return std::chrono::seconds(static_cast<std::int64_t>(value * unit));
}

std::vector<std::string> parse_host_list(std::string_view text) {
  std::vector<std::string> hosts;
  if (trim(text).empty()) {
    throw InputError("--hosts is empty: give a comma-separated list, this host first");
  }
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string_view host = trim(text.substr(start, comma - start));
    if (host.empty()) {
      throw InputError(
          fmt::format("--hosts '{}' has an empty entry: remove the extra comma", text));
    }
    hosts.emplace_back(host);
    start = comma + 1;
  }
  check_hosts(hosts, "--hosts");
  return hosts;
}

std::vector<std::string> read_hostfile(const std::filesystem::path& path) {
  // An ifstream opens a directory and then reads nothing, which would report "no hosts".
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw InputError(fmt::format("hostfile {} is a directory: name the file that lists the hosts",
                                 path.string()));
  }
  std::ifstream in(path);
  if (!in) {
    throw InputError(fmt::format("hostfile {} cannot be read: check the path", path.string()));
  }
  std::vector<std::string> hosts;
  for (std::string line; std::getline(in, line);) {
    std::string_view entry = line;
    entry = entry.substr(0, entry.find('#'));
    entry = trim(entry);
    if (entry.empty())
      continue;
    const std::size_t space = entry.find_first_of(" \t");
    hosts.emplace_back(entry.substr(0, space));
  }
  check_hosts(hosts, fmt::format("hostfile {}", path.string()));
  return hosts;
}

}  // namespace imgcast::cli
