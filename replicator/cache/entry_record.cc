#include "replicator/cache/entry_record.h"

#include <nlohmann/json.hpp>

namespace imgcast::replicator {

namespace {

// A source key is 16 hex digits (a file's, make_source_key); anything else is not ours.
bool is_source_key(const std::string& key) {
  return key.size() == 16 && key.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Bounds on what a record may hold: it is read back on every lookup.
constexpr std::size_t kMaxPathBytes = 4096;

}  // namespace

std::string EntryRecord::encode() const {
  nlohmann::json sources_json = nlohmann::json::array();
  for (const EntrySource& source : sources) {
    sources_json.push_back({{"key", source.key}, {"path", source.path}});
  }
  const nlohmann::json json = {
      {"format", "imgcast-cache-entry 1"}, {"digest", digest.to_hex()},
      {"bytes", bytes},                    {"inode", inode},
      {"mtime_ns", mtime_ns},              {"added_ns", added_ns},
      {"last_used_ns", last_used_ns},      {"sources", sources_json}};
  // Paths may hold any bytes: replace what is not UTF-8 rather than throw.
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::optional<EntryRecord> EntryRecord::decode(std::string_view text) {
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  // (Never json.value(): it throws when a field has another type.)
  const auto format = json.is_object() ? json.find("format") : json.end();
  if (!json.is_object() || format == json.end() || !format->is_string() ||
      format->get<std::string>() != "imgcast-cache-entry 1") {
    return std::nullopt;
  }
  // Every field must be there with its type: a record is trusted whole or not at all.
  const auto number = [&](const char* name) -> const nlohmann::json* {
    const auto it = json.find(name);
    return it != json.end() && it->is_number_integer() ? &*it : nullptr;
  };
  const auto digest_it = json.find("digest");
  const auto sources_it = json.find("sources");
  if (digest_it == json.end() || !digest_it->is_string() || sources_it == json.end() ||
      !sources_it->is_array() || sources_it->size() > kMaxEntrySources) {
    return std::nullopt;
  }
  for (const char* name : {"bytes", "inode", "mtime_ns", "added_ns", "last_used_ns"}) {
    if (number(name) == nullptr) {
      return std::nullopt;
    }
  }
  const std::optional<ImageDigest> digest = ImageDigest::from_hex(digest_it->get<std::string>());
  if (!digest || !number("bytes")->is_number_unsigned() || !number("inode")->is_number_unsigned()) {
    return std::nullopt;
  }
  EntryRecord record;
  record.digest = *digest;
  record.bytes = number("bytes")->get<std::uint64_t>();
  record.inode = number("inode")->get<std::uint64_t>();
  record.mtime_ns = number("mtime_ns")->get<std::int64_t>();
  record.added_ns = number("added_ns")->get<std::int64_t>();
  record.last_used_ns = number("last_used_ns")->get<std::int64_t>();
  for (const nlohmann::json& source : *sources_it) {
    if (!source.is_object() || !source.contains("key") || !source["key"].is_string() ||
        !source.contains("path") || !source["path"].is_string()) {
      return std::nullopt;
    }
    EntrySource entry{source["key"].get<std::string>(), source["path"].get<std::string>()};
    if (!is_source_key(entry.key) || entry.path.size() > kMaxPathBytes) {
      return std::nullopt;
    }
    record.sources.push_back(std::move(entry));
  }
  return record;
}

}  // namespace imgcast::replicator
