#include "replicator/session/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <ostream>

#include "transport/kind.h"

namespace imgcast::replicator {

std::string link_kinds_name(std::uint8_t link_kinds) {
  std::string name;
  for (const auto kind : {transport::Kind::kVerbs, transport::Kind::kUcx, transport::Kind::kTcp}) {
    if ((link_kinds & (1u << static_cast<unsigned>(kind))) != 0) {
      name += (name.empty() ? "" : "+") + std::string(transport::to_string(kind));
    }
  }
  return name;
}

int Report::cached_count() const {
  return static_cast<int>(
      std::count_if(nodes.begin(), nodes.end(), [](const NodeResult& n) { return n.cached; }));
}

int Report::verified_count() const {
  return static_cast<int>(
      std::count_if(nodes.begin(), nodes.end(), [](const NodeResult& n) { return n.verified; }));
}

ExitCode Report::exit_code() const {
  const int verified = verified_count();
  const int failed = static_cast<int>(nodes.size()) - verified;
  const bool root_ok = !nodes.empty() && nodes.front().verified;
  if (failed == 0 || (root_ok && failed <= allowed_failures)) {
    return ExitCode::kSuccess;
  }
  return verified > 0 ? ExitCode::kPartial : ExitCode::kTransferFailed;
}

void Report::print(std::ostream& out) const {
  const double megabytes = static_cast<double>(image_bytes) / 1e6;
  std::size_t host_width = 4;
  for (const auto& n : nodes) {
    host_width = std::max(host_width, n.host.size());
  }
  if (!plan.empty()) {
    out << "plan: " << plan << "\n";
  }
  out << fmt::format("{:>4}  {:<{}}  {:>8}  {:>9}  {:<7}  {}\n", "rank", "host", host_width,
                     "time", "MB/s", "link", "result");
  for (const auto& n : nodes) {
    const std::string rate = n.verified && !n.cached && n.seconds > 0
                                 ? fmt::format("{:.1f}", megabytes / n.seconds)
                                 : "-";
    std::string result = n.cached     ? "cached " + n.destination
                         : n.verified ? "verified " + n.destination
                                      : "FAILED: " + n.failure;
    if (n.reparents > 0 || n.refetched > 0) {
      result += fmt::format(" ({} new parent{}, {} chunk{} fetched again)", n.reparents,
                            n.reparents == 1 ? "" : "s", n.refetched, n.refetched == 1 ? "" : "s");
    }
    out << fmt::format("{:>4}  {:<{}}  {:>7.3f}s  {:>9}  {:<7}  {}\n", n.rank, n.host, host_width,
                       n.seconds, rate, n.transport.empty() ? "-" : n.transport, result);
  }
  const double aggregate =
      transfer_seconds > 0 ? megabytes * (verified_count() - cached_count()) / transfer_seconds : 0;
  out << fmt::format(
      "total: {}/{} nodes verified{}, {:.1f} MB image, {} chunks of {} KiB, {} over {}, "
      "transfer {:.3f}s (setup {:.3f}s), {:.1f} MB/s aggregate, xxh3-128 {}\n",
      verified_count(), nodes.size(),
      cached_count() ? fmt::format(" ({} cached)", cached_count()) : std::string(), megabytes,
      chunk_bytes ? (image_bytes + chunk_bytes - 1) / chunk_bytes : 0, chunk_bytes / 1024, topology,
      transport, transfer_seconds, setup_seconds, aggregate, digest);
  if (tree) {
    out << fmt::format("tree: {} files, {} directories, {} symlinks, {} hardlinks, {} bytes of "
                       "file data\n",
                       tree->files, tree->directories, tree->symlinks, tree->hardlinks,
                       tree->bytes);
  }
}

std::vector<int> Report::stragglers() const {
  std::vector<double> times;
  for (const auto& n : nodes) {
    if (n.verified && !n.cached)
      times.push_back(n.seconds);
  }
  std::vector<int> slow;
  if (times.empty())
    return slow;
  std::sort(times.begin(), times.end());
  const std::size_t mid = times.size() / 2;
  const double median = times.size() % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
  for (const auto& n : nodes) {
    if (n.verified && !n.cached && n.seconds > 1.5 * median)
      slow.push_back(n.rank);
  }
  return slow;
}

void Report::print_json(std::ostream& out) const {
  nlohmann::json nodes_json = nlohmann::json::array();
  for (const auto& n : nodes) {
    nlohmann::json node = {{"rank", n.rank},
                           {"host", n.host},
                           {"destination", n.destination},
                           {"verified", n.verified},
                           {"cached", n.cached},
                           {"seconds", n.seconds},
                           {"reparents", n.reparents},
                           {"refetched_chunks", n.refetched}};
    node["mb_per_s"] = n.verified && !n.cached && n.seconds > 0
                           ? nlohmann::json(image_bytes / 1e6 / n.seconds)
                           : nullptr;
    node["failure"] = n.verified ? nullptr : nlohmann::json(n.failure);
    node["transport"] = n.transport.empty() ? nullptr : nlohmann::json(n.transport);
    nodes_json.push_back(std::move(node));
  }
  nlohmann::json document = {{"schema", "imgcast.report.v1"},
                                   {"image_bytes", image_bytes},
                                   {"digest_xxh3_128", digest},
                                   {"topology", topology},
                                   {"transport", transport},
                                   {"chunk_bytes", chunk_bytes},
                                   {"plan", plan},
                                   {"setup_seconds", setup_seconds},
                                   {"transfer_seconds", transfer_seconds},
                                   {"nodes", nodes_json},
                                   {"stragglers", stragglers()},
                                   {"totals",
                                    {{"nodes", nodes.size()},
                                     {"verified", verified_count()},
                                     {"cached", cached_count()},
                                     {"failed", nodes.size() - verified_count()},
                                     {"allowed_failures", allowed_failures},
                                     {"exit_code", static_cast<int>(exit_code())}}}};
  // "tree" only for a directory tree: an image's report stays what it was (schema v1 grows).
  if (tree) {
    document["tree"] = {{"files", tree->files},
                        {"directories", tree->directories},
                        {"symlinks", tree->symlinks},
                        {"hardlinks", tree->hardlinks},
                        {"bytes", tree->bytes}};
  }
  out << document.dump(2) << "\n";
}

}  // namespace imgcast::replicator
