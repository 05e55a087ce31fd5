// How `imgcast cache` shows a node's cache: one JSON document per command (the schema in
// docs/usage.md) and the tables people read. The list table is rendered from the list document,
// so a remote host's answer (`cache list --hosts`, which arrives as that document) and this
// node's own print the same way.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "replicator/cache/node_cache.h"

namespace imgcast::cli {

// Keys in the order written, so every document starts with its "schema".
using CacheJson = nlohmann::ordered_json;

// Now, on the wall clock the cache's records use (CLOCK_REALTIME, ns since the epoch).
std::int64_t wall_clock_ns();

// "3.0 MiB", "512 B", "1.2 TiB".
std::string human_bytes(std::uint64_t bytes);
// How long before `now_ns` `then_ns` was: "just now", "42 s ago", "3 min ago", "5 h ago",
// "2 d ago"; a time ahead of now (another node's clock) is "in the future".
std::string human_age(std::int64_t now_ns, std::int64_t then_ns);
// UTC, to the millisecond: "2024-05-01T12:03:04.123Z".
std::string iso8601(std::int64_t ns);

// One entry: digest (whole), bytes, added/last_used (ns and ISO-8601), pins, in_use, sources.
CacheJson entry_json(const replicator::EntryRecord& record, const std::vector<std::string>& pins,
                     bool in_use);
CacheJson entry_json(const replicator::CacheListing& listing);

// `imgcast cache list --json`: schema imgcast.cache.list.v1.
CacheJson list_document(const std::string& host, const std::filesystem::path& dir,
                        const std::vector<replicator::CacheListing>& listings);

// The table of a list document: one line per entry (short digest, size, last use, added, pins,
// in use, sources), then the total. Throws nlohmann::json::exception when the document lacks a
// field (a remote host's answer is checked this way).
void print_list_table(std::ostream& out, const CacheJson& document, std::int64_t now_ns);

// The digest as the table shows it: its first 12 hex digits (enough to name it in `cache rm`).
std::string short_digest(const std::string& hex);

}  // namespace imgcast::cli
