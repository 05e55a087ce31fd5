// What the `imgcast cache` subcommands share between cache_command.cc (one node) and
// cache_hosts.cc (`cache list --hosts`: many).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace imgcast::cli {

struct CacheArgs {
  std::string cache_dir;  // empty: replicator::default_cache_dir()
  bool json = false;
  // list --hosts
  std::string hosts;
  std::string hostfile;
  std::string rsh = "ssh";
  std::string agent_path;  // imgcast on the other hosts (empty: this executable's path)
  double timeout = 30;
  // rm
  std::vector<std::string> digests;
  // prune
  std::string max;
  std::string older_than;
  // pin, unpin
  std::string digest;
  std::string label = "manual";
};

// --hosts, --hostfile, --rsh, --agent-path, --timeout on `cache list`.
void add_host_options(CLI::App* list, CacheArgs& args);

// `cache list --hosts`: runs `imgcast cache list --json` on each host through --rsh, in
// parallel; prints one table per host on `text` (when not null) and hands `document` the whole
// {host: result} document. 0 when every host answered, 3 when some failed, 2 when all did.
int run_list_on_hosts(const CacheArgs& args, const GlobalOptions& global, std::ostream* text,
                      const std::function<void(const nlohmann::ordered_json&)>& document);

}  // namespace imgcast::cli
