// imgcast cache list | rm | prune | pin | unpin: this node's image cache (node_cache.h), by hand.
// `list --hosts` asks other nodes (cache_hosts.cc).
#include "cli/cache_command.h"

#include <cstdlib>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iostream>
#include <optional>

#include "cli/cache_output.h"
#include "cli/site_config.h"
#include "cli/commands.h"
#include "cli/logging.h"
#include "cli/parse.h"
#include "cli/result_output.h"
#include "cli/run_guard.h"
#include "replicator/cache/node_cache.h"
#include "replicator/errors.h"

namespace imgcast::cli {

namespace {

using json = nlohmann::ordered_json;  // keys in the order written: "schema" first
using replicator::CacheListing;
using replicator::InputError;
using replicator::NodeCache;

// --cache-dir, else $IMGCAST_CACHE_DIR, else the site config's [replicate] cache-dir (the one
// place a site names its cache: `imgcast cache` must look where replicate puts it), else the
// built-in default. The config file was checked when it was loaded for this run.
std::filesystem::path cache_dir_of(const CacheArgs& args) {
  if (!args.cache_dir.empty()) {
    return args.cache_dir;
  }
  if (const char* env = std::getenv("IMGCAST_CACHE_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  if (const auto config = load_site_config()) {
    for (const CLI::ConfigItem& item : config->items) {
      if (item.parents == std::vector<std::string>{"replicate"} && item.name == "cache-dir" &&
          item.inputs.size() == 1) {
        return item.inputs.front();
      }
    }
  }
  return replicator::default_cache_dir();
}

// The entry a digest or unique prefix names, from a listing (for what the output shows: the
// library resolves prefixes itself, and says when one is ambiguous).
const CacheListing* find(const std::vector<CacheListing>& listings, const std::string& prefix) {
  const CacheListing* found = nullptr;
  for (const auto& listing : listings) {
    if (!prefix.empty() && listing.record.digest.to_hex().starts_with(prefix)) {
      if (found != nullptr)
        return nullptr;
      found = &listing;
    }
  }
  return found;
}

// Where --json's document goes (stdout kept for it alone), else the table to std::cout.
class Output {
 public:
  Output(bool json, bool quiet) : quiet_(quiet) {
    if (json)
      json_.emplace();
  }
  bool is_json() const { return json_.has_value(); }
  // The human lines, unless --json or -q.
  std::ostream* text() { return json_ || quiet_ ? nullptr : &std::cout; }
  void document(const json& doc) {
    if (json_)
      json_->write(doc.dump(2) + "\n");
  }

 private:
  bool quiet_;
  std::optional<ResultOutput> json_;
};

int run_list(const CacheArgs& args, Output& out) {
  NodeCache cache = NodeCache::open(cache_dir_of(args));
  const json doc = list_document(hostname(), cache.dir(), cache.list());
  out.document(doc);
  if (auto* text = out.text())
    print_list_table(*text, doc, wall_clock_ns());
  return 0;
}

int run_rm(const CacheArgs& args, Output& out) {
  NodeCache cache = NodeCache::open(cache_dir_of(args));
  const std::vector<CacheListing> before = cache.list();
  json removed = json::array();
  json refused = json::array();
  for (const std::string& digest : args.digests) {
    std::string why;
    bool ok = false;
    try {
      ok = cache.remove(digest, &why);
    } catch (const InputError& error) {  // a prefix of more than one entry
      why = error.what();
    }
    const CacheListing* entry = find(before, digest);
    if (ok && entry != nullptr) {
      removed.push_back(entry_json(entry->record, {}, false));
      if (auto* text = out.text()) {
        *text << fmt::format("removed {}  {}\n", short_digest(entry->record.digest.to_hex()),
                             human_bytes(entry->record.bytes));
      }
      spdlog::info("removed cache entry {} from {}", entry->record.digest.to_hex(),
                   cache.dir().string());
    } else if (ok) {  // an entry committed after the listing above: only its name is known
      removed.push_back({{"digest", digest}});
    } else {
      refused.push_back({{"digest", digest}, {"reason", why}});
      std::cerr << "imgcast: error: " << why << "\n";
    }
  }
  out.document({{"schema", "imgcast.cache.rm.v1"},
                {"cache_dir", cache.dir().string()},
                {"removed", removed},
                {"refused", refused}});
  return refused.empty() ? 0 : static_cast<int>(replicator::ExitCode::kUsage);
}

int run_prune(const CacheArgs& args, Output& out) {
  if (args.max.empty() && args.older_than.empty()) {
    throw InputError(
        "cache prune needs --max SIZE (e.g. 10G) or --older-than DURATION (e.g. 7d), or both");
  }
  std::optional<std::uint64_t> max_bytes;
  if (!args.max.empty())
    max_bytes = parse_size(args.max, "--max");
  std::optional<std::int64_t> before_ns;
  if (!args.older_than.empty()) {
    const auto age = parse_duration(args.older_than, "--older-than");
    before_ns = wall_clock_ns() - std::chrono::nanoseconds(age).count();
  }
  NodeCache cache = NodeCache::open(cache_dir_of(args));
  const std::vector<replicator::EntryRecord> removed = cache.prune(max_bytes, before_ns);
  const std::vector<CacheListing> kept = cache.list();

  json removed_json = json::array();
  std::uint64_t removed_bytes = 0;
  for (const auto& record : removed) {
    removed_json.push_back(entry_json(record, {}, false));
    removed_bytes += record.bytes;
  }
  json kept_json = json::array();
  std::uint64_t kept_bytes = 0;
  std::vector<std::string> held;  // what a goal could not remove, and why
  for (const auto& listing : kept) {
    kept_json.push_back(entry_json(listing));
    kept_bytes += listing.record.bytes;
    std::vector<std::string> reasons;
    if (listing.in_use)
      reasons.push_back("in use");
    if (!listing.manual_pins.empty())
      reasons.push_back(fmt::format("pinned: {}", fmt::join(listing.manual_pins, ", ")));
    if (!reasons.empty()) {
      held.push_back(fmt::format("{} ({}, {})", short_digest(listing.record.digest.to_hex()),
                                 human_bytes(listing.record.bytes), fmt::join(reasons, "; ")));
    }
  }
  spdlog::info("pruned {} entries ({}) from {}", removed.size(), human_bytes(removed_bytes),
               cache.dir().string());
  if (auto* text = out.text()) {
    for (const auto& record : removed) {
      *text << fmt::format("removed {}  {}  last used {}\n", short_digest(record.digest.to_hex()),
                           human_bytes(record.bytes),
                           human_age(wall_clock_ns(), record.last_used_ns));
    }
    *text << fmt::format("removed {} {} ({}); kept {} ({})\n", removed.size(),
                         removed.size() == 1 ? "entry" : "entries", human_bytes(removed_bytes),
                         kept.size(), human_bytes(kept_bytes));
    for (const auto& line : held)
      *text << "kept " << line << "\n";
  }
  if (max_bytes && kept_bytes > *max_bytes) {
    // Not an error: what is in use or pinned must stay, and the rest went. But say it.
    spdlog::warn("the cache still holds {} (over --max {}): what stays is in use or pinned",
                 human_bytes(kept_bytes), human_bytes(*max_bytes));
  }
  out.document({{"schema", "imgcast.cache.prune.v1"},
                {"cache_dir", cache.dir().string()},
                {"removed", removed_json},
                {"removed_bytes", removed_bytes},
                {"kept", kept_json},
                {"kept_bytes", kept_bytes}});
  return 0;
}

int run_pin(const CacheArgs& args, Output& out, bool pin) {
  NodeCache cache = NodeCache::open(cache_dir_of(args));
  if (pin) {
    cache.pin(args.digest, args.label);  // InputError for an unknown entry or a bad label
  } else if (!cache.unpin(args.digest, args.label)) {
    const std::vector<CacheListing> listings = cache.list();
    const CacheListing* entry = find(listings, args.digest);
    if (entry == nullptr) {
      throw InputError(fmt::format("no cache entry {} in {}: see imgcast cache list", args.digest,
                                   cache.dir().string()));
    }
    throw InputError(fmt::format("{} has no pin '{}' (its pins: {})",
                                 short_digest(entry->record.digest.to_hex()), args.label,
                                 entry->manual_pins.empty()
                                     ? "none"
                                     : fmt::format("{}", fmt::join(entry->manual_pins, ", "))));
  }
  const std::vector<CacheListing> listings = cache.list();
  const CacheListing* entry = find(listings, args.digest);
  if (entry == nullptr) {
    // Removed between the pin and this look (only an unpinned one can be): nothing to show.
    throw InputError(
        fmt::format("cache entry {} is gone from {}", args.digest, cache.dir().string()));
  }
  const std::string hex = entry->record.digest.to_hex();
  std::vector<std::string> pins = entry->manual_pins;
  std::sort(pins.begin(), pins.end());
  spdlog::info("{} {} in {} ({})", pin ? "pinned" : "unpinned", hex, cache.dir().string(),
               args.label);
  if (auto* text = out.text()) {
    *text << fmt::format("{} {} ({}); its pins: {}\n", pin ? "pinned" : "unpinned",
                         short_digest(hex), args.label,
                         pins.empty() ? "none" : fmt::format("{}", fmt::join(pins, ", ")));
  }
  out.document({{"schema", pin ? "imgcast.cache.pin.v1" : "imgcast.cache.unpin.v1"},
                {"cache_dir", cache.dir().string()},
                {"digest", hex},
                {"label", args.label},
                {"pins", pins},
                {"in_use", entry->in_use}});
  return 0;
}

// The options every cache subcommand has.
void add_common(CLI::App* cmd, CacheArgs& args) {
  cmd->add_option("--cache-dir", args.cache_dir,
                  "The node cache's directory (default: $IMGCAST_CACHE_DIR, else "
                  "/tmp/imgcast-cache-UID)");
  cmd->add_flag("--json", args.json, "Print the result as one JSON document (docs/usage.md)");
}

}  // namespace

Run add_cache_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<CacheArgs>();
  CLI::App* cache = app.add_subcommand(
      "cache", "This node's image cache (replicate --cache): list, remove, prune, pin");
  cache->require_subcommand(1);
  cache->footer(
      "Examples:\n"
      "  imgcast cache list                               this node's entries\n"
      "  imgcast cache list --hosts node1,node2 --json    every node's, one document\n"
      "  imgcast cache prune --max 50G --older-than 7d\n"
      "  imgcast cache pin 3f9a2c41d07e --label campaign\n"
      "  imgcast cache rm 3f9a2c41d07e\n"
      "Exit codes: 0 success, 1 usage or bad input (an unknown digest, an entry in use or\n"
      "pinned), 2 failed (every host, for list --hosts), 3 partial (some hosts failed),\n"
      "4 refused for security reasons (a cache directory that is not ours alone).");

  CLI::App* list = cache->add_subcommand(
      "list", "Every entry: digest, size, last use, added, pins, in use, sources");
  add_common(list, *args);
  add_host_options(list, *args);
  list->footer(
      "Examples:\n  imgcast cache list\n  imgcast cache list --hostfile hosts --rsh "
      "'ssh -o BatchMode=yes' --json");

  CLI::App* rm = cache->add_subcommand(
      "rm", "Remove entries (refused for one in use by a running job or pinned by hand)");
  add_common(rm, *args);
  rm->add_option("DIGEST", args->digests, "Digests, or a unique prefix of each")->required();
  rm->footer("Example:\n  imgcast cache rm 3f9a2c41d07e 77b0");

  CLI::App* prune = cache->add_subcommand(
      "prune",
      "Remove entries no job uses and no pin holds: least recently used first down to --max, "
      "and every one unused for --older-than");
  add_common(prune, *args);
  prune->add_option("--max", args->max, "Size to shrink to: 10G, 512M, 1T (binary units)");
  prune->add_option("--older-than", args->older_than,
                    "Remove what was last used longer ago than this: 30m, 12h, 7d, 2w");
  prune->footer(
      "Examples:\n  imgcast cache prune --max 50G\n  imgcast cache prune --older-than 7d");

  CLI::App* pin = cache->add_subcommand(
      "pin", "Pin an entry by hand: prune, eviction and rm leave it until unpinned");
  CLI::App* unpin = cache->add_subcommand("unpin", "Remove a pin by hand (one label)");
  for (CLI::App* cmd : {pin, unpin}) {
    add_common(cmd, *args);
    cmd->add_option("DIGEST", args->digest, "Digest, or a unique prefix of it")->required();
    cmd->add_option("--label", args->label, "The pin's name ([A-Za-z0-9_.-])")
        ->capture_default_str();
  }
  pin->footer("Example:\n  imgcast cache pin 3f9a2c41d07e --label campaign");
  unpin->footer("Example:\n  imgcast cache unpin 3f9a2c41d07e --label campaign");

  return [args, &global, list, rm, prune, pin, unpin]() {
    setup_logging(hostname(), 0, global.level());
    return run_guarded([&] {
      Output out(args->json, global.quiet);
      if (list->parsed()) {
        if (!args->hosts.empty() || !args->hostfile.empty())
          return run_list_on_hosts(*args, global, out.text(),
                                   [&out](const json& doc) { out.document(doc); });
        return run_list(*args, out);
      }
      if (rm->parsed())
        return run_rm(*args, out);
      if (prune->parsed())
        return run_prune(*args, out);
      return run_pin(*args, out, pin->parsed());
    });
  };
}

}  // namespace imgcast::cli
