// imgcast cache list --hosts h1,h2,... | --hostfile F [--rsh CMD]: every node's cache at once,
// by running `imgcast cache list --json` on each (the way the root reaches its agents: --rsh,
// --agent-path) and gathering the answers into one table per host or one document.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/cache_command.h"
#include "cli/cache_output.h"
#include "cli/context_factory.h"
#include "cli/host_fanout.h"
#include "cli/parse.h"
#include "cli/run_guard.h"
#include "replicator/errors.h"
#include "replicator/session/agent_command_line.h"
#include "replicator/session/host_names.h"

namespace imgcast::cli {

using json = nlohmann::ordered_json;  // keys in the order written: "schema" first
using replicator::ExitCode;

void add_host_options(CLI::App* list, CacheArgs& args) {
  auto* hosts = list->add_option(
      "--hosts", args.hosts,
      "Comma-separated hosts whose caches to list (through --rsh; this host too only if named)");
  list->add_option("--hostfile", args.hostfile, "File with one host per line")->excludes(hosts);
  list->add_option("--rsh", args.rsh,
                   "Command that runs imgcast on a host: CMD HOST 'command' ('local': this "
                   "machine)")
      ->capture_default_str();
  list->add_option("--agent-path", args.agent_path,
                   "imgcast's path on the other hosts (default: this executable's path)");
  list->add_option("--timeout", args.timeout, "Seconds each host has to answer")
      ->capture_default_str();
}

namespace {

// The remote command: its answer is the list document on stdout, its errors one line on stderr.
std::string remote_command(const CacheArgs& args, const GlobalOptions& global) {
  const std::string program = args.agent_path.empty() ? self_path() : args.agent_path;
  std::string command = "exec " + replicator::shell_quote(program) + " --log-level " +
                        replicator::shell_quote(global.level()) + " cache list --json";
  // Only a directory named here is passed on: otherwise each host uses its own default (its
  // $IMGCAST_CACHE_DIR, its uid), as a job there would.
  if (!args.cache_dir.empty())
    command += " --cache-dir " + replicator::shell_quote(args.cache_dir);
  return command;
}

// A host's answer as a list document, or the one line saying why it is not one.
json parse_answer(const HostAnswer& answer, std::string* error) {
  if (!answer.ok) {
    *error = answer.error;
    return nullptr;
  }
  try {
    json doc = json::parse(answer.out);
    if (!doc.is_object() || doc.value("schema", "") != "imgcast.cache.list.v1" ||
        !doc.contains("entries")) {
      *error = "answered something other than imgcast.cache.list.v1 (an older imgcast there?)";
      return nullptr;
    }
    return doc;
  } catch (const json::exception& e) {
    *error = fmt::format("answered no JSON document (an older imgcast there?): {}", e.what());
    return nullptr;
  }
}

}  // namespace

int run_list_on_hosts(const CacheArgs& args, const GlobalOptions& global, std::ostream* text,
                      const std::function<void(const json&)>& document) {
  const std::vector<std::string> hosts =
      args.hostfile.empty() ? parse_host_list(args.hosts) : read_hostfile(args.hostfile);
  const auto timeout = parse_seconds(args.timeout, "--timeout");
  const std::string command = remote_command(args, global);
  spdlog::info("asking {} hosts through {}: {}", hosts.size(), args.rsh, command);

  const std::vector<HostAnswer> answers = run_on_hosts(args.rsh, hosts, command, timeout);
  json all = json::object();
  std::vector<std::string> failed;
  const std::int64_t now = wall_clock_ns();
  for (const HostAnswer& answer : answers) {
    std::string error;
    json doc = parse_answer(answer, &error);
    if (text != nullptr)
      *text << (&answer == &answers.front() ? "" : "\n") << "== " << answer.host << " ==\n";
    if (!doc.is_null() && text != nullptr) {
      try {
        print_list_table(*text, doc, now);
      } catch (const json::exception& e) {
        error = fmt::format("answered a list document with a bad entry: {}", e.what());
        doc = nullptr;
      }
    }
    if (doc.is_null()) {
      failed.push_back(fmt::format("{} ({})", answer.host, error));
      if (text != nullptr)
        *text << "error: " << error << "\n";
      all[answer.host] = {{"error", error}};
    } else {
      all[answer.host] = std::move(doc);
    }
  }
  document(all);
  if (failed.empty())
    return static_cast<int>(ExitCode::kSuccess);
  std::cerr << fmt::format("imgcast: error: {} of {} hosts failed: {}\n", failed.size(),
                           hosts.size(), replicator::name_at_most(failed, "; "));
  return static_cast<int>(failed.size() == hosts.size() ? ExitCode::kTransferFailed
                                                        : ExitCode::kPartial);
}

}  // namespace imgcast::cli
