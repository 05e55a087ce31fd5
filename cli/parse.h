// Parsers for what users type: sizes ("4M", "256MiB", "1G", "4096"), durations ("30m", "7d")
// and host lists ("a,b,c" or a hostfile). Each throws InputError with a one-line reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace imgcast::cli {

// Bytes; suffixes K/M/G/T (binary, optional "iB" or "B"), case-insensitive. Rejects negative,
// empty, overflowing or trailing garbage. `what` names the option in the error ("--chunk-size").
std::uint64_t parse_size(std::string_view text, std::string_view what);

// A whole number with a unit: s, m, h, d or w (seconds .. weeks), case-insensitive, e.g. "30m",
// "12h", "7d". The unit is required: a bare "30" could mean any of them. Rejects zero, negative,
// overflowing (over 100 years) or trailing garbage. `what` names the option ("--older-than").
std::chrono::seconds parse_duration(std::string_view text, std::string_view what);

// "h1,h2,h3": trims spaces, rejects empty entries, an empty list and duplicates (naming the
// duplicate host). Host names are [A-Za-z0-9._:-] only (no shell metacharacters).
std::vector<std::string> parse_host_list(std::string_view text);

// One host per line; '#' starts a comment; blank lines skipped; anything after the first
// whitespace on a line (e.g. "slots=4") is ignored. Same checks as parse_host_list.
std::vector<std::string> read_hostfile(const std::filesystem::path& path);

}  // namespace imgcast::cli
