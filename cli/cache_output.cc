#include "cli/cache_output.h"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <array>

namespace imgcast::cli {

using json = nlohmann::ordered_json;  // keys in the order written: "schema" first

std::int64_t wall_clock_ns() {
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

std::string human_bytes(std::uint64_t bytes) {
  static constexpr std::array<const char*, 5> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) {
    return fmt::format("{} B", bytes);
  }
  double value = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::string human_age(std::int64_t now_ns, std::int64_t then_ns) {
  if (then_ns <= 0) {
    return "never";
  }
  // A second of slack: a record written a moment ago on a clock a hair ahead is not "future".
  if (then_ns > now_ns + 1'000'000'000) {
    return "in the future";
  }
  const std::int64_t s = std::max<std::int64_t>(0, (now_ns - then_ns) / 1'000'000'000);
  if (s < 5) {
    return "just now";
  }
  if (s < 60) {
    return fmt::format("{} s ago", s);
  }
  if (s < 3600) {
    return fmt::format("{} min ago", s / 60);
  }
  if (s < 2 * 86400) {
    return fmt::format("{} h ago", s / 3600);
  }
  return fmt::format("{} d ago", s / 86400);
}

std::string iso8601(std::int64_t ns) {
  // Floor division: a time before the epoch (a bogus record) still prints a valid date.
  std::int64_t secs = ns / 1'000'000'000;
  std::int64_t rest = ns % 1'000'000'000;
  if (rest < 0) {
    --secs;
    rest += 1'000'000'000;
  }
  const time_t t = static_cast<time_t>(secs);
  struct tm utc {};
  if (::gmtime_r(&t, &utc) == nullptr) {
    return "";
  }
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     rest / 1'000'000);
}

std::string short_digest(const std::string& hex) { return hex.substr(0, 12); }

json entry_json(const replicator::EntryRecord& record, const std::vector<std::string>& pins,
                bool in_use) {
  json sources = json::array();
  for (const auto& source : record.sources) {
    sources.push_back({{"path", source.path}, {"key", source.key}});
  }
  // Sorted: the library gives them in directory order, which would make the output churn.
  std::vector<std::string> labels = pins;
  std::sort(labels.begin(), labels.end());
  return {{"digest", record.digest.to_hex()},    {"bytes", record.bytes},
          {"added_ns", record.added_ns},         {"added", iso8601(record.added_ns)},
          {"last_used_ns", record.last_used_ns}, {"last_used", iso8601(record.last_used_ns)},
          {"pins", std::move(labels)},           {"in_use", in_use},
          {"sources", std::move(sources)}};
}

json entry_json(const replicator::CacheListing& listing) {
  return entry_json(listing.record, listing.manual_pins, listing.in_use);
}

json list_document(const std::string& host, const std::filesystem::path& dir,
                   const std::vector<replicator::CacheListing>& listings) {
  json entries = json::array();
  std::uint64_t total = 0;
  for (const auto& listing : listings) {
    entries.push_back(entry_json(listing));
    total += listing.record.bytes;
  }
  return {{"schema", "imgcast.cache.list.v1"},
          {"host", host},
          {"cache_dir", dir.string()},
          {"entries", std::move(entries)},
          {"total_bytes", total}};
}

namespace {

std::string joined(const json& values, const char* field) {
  std::string out;
  for (const auto& value : values) {
    out += (out.empty() ? "" : ", ") +
           (field ? value.at(field).get<std::string>() : value.get<std::string>());
  }
  return out;
}

}  // namespace

void print_list_table(std::ostream& out, const json& document, std::int64_t now_ns) {
  using Row = std::array<std::string, 7>;
  std::vector<Row> rows = {{"DIGEST", "SIZE", "LAST USE", "ADDED", "PINS", "IN USE", "SOURCES"}};
  for (const auto& entry : document.at("entries")) {
    const auto pins = joined(entry.at("pins"), nullptr);
    rows.push_back({short_digest(entry.at("digest").get<std::string>()),
                    human_bytes(entry.at("bytes").get<std::uint64_t>()),
                    human_age(now_ns, entry.at("last_used_ns").get<std::int64_t>()),
                    human_age(now_ns, entry.at("added_ns").get<std::int64_t>()),
                    pins.empty() ? "-" : pins, entry.at("in_use").get<bool>() ? "yes" : "no",
                    joined(entry.at("sources"), "path")});
  }
  std::array<std::size_t, 7> width{};
  for (const Row& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  const std::size_t count = rows.size() - 1;
  if (count > 0) {
    for (const Row& row : rows) {
      std::string line;
      for (std::size_t i = 0; i < row.size(); ++i) {
        // The last column (sources) is as long as it is: no padding after it.
        line += i + 1 < row.size() ? fmt::format("{:<{}}  ", row[i], width[i]) : row[i];
      }
      out << line << "\n";
    }
  }
  out << fmt::format("total: {} {}, {} in {}\n", count, count == 1 ? "entry" : "entries",
                     human_bytes(document.at("total_bytes").get<std::uint64_t>()),
                     document.at("cache_dir").get<std::string>());
}

}  // namespace imgcast::cli
