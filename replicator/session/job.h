// What the root and its agents share about one transfer, and the small helpers both sides use.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "replicator/protocol/auth.h"
#include "transport/context.h"
#include "transport/kind.h"

namespace imgcast::replicator {

// Makes a transport Context; the CLI passes the factory in, so the replicator never links a
// backend.
using ContextFactory = std::function<std::unique_ptr<transport::Context>(transport::Kind)>;

// The one line the root writes to each agent's standard input: never argv, never a log.
//   "IMGCAST1 <job id, 32 hex> <job key, 64 hex> <data transport>\n"
struct JobSecret {
  JobId job{};
  JobKey key;
  transport::Kind transport = transport::Kind::kTcp;

  std::string to_line() const;
  // nullopt for anything malformed.
  static std::optional<JobSecret> parse(std::string_view line);
};

// Expands "%r" (rank), "%h" (host) and "%%" in a destination, so one command line can name a
// different path per node (e.g. several "nodes" on one machine). Throws InputError for an unknown
// "%x".
std::string expand_destination(std::string_view pattern, int rank, std::string_view host);

// True when `host` resolves to an address of this machine (binding a socket to it succeeds; no
// packet is sent). The root must be the first host of the list.
bool is_this_machine(const std::string& host);

// Waits up to `timeout` until one of `fds` (at most kMaxWaitFds; -1 is skipped) is readable
// (EINTR ends the wait early, so a signal is seen at once).
inline constexpr std::size_t kMaxWaitFds = 4;
void wait_readable(std::span<const int> fds, std::chrono::milliseconds timeout);

// Drains every completion a context has now, without blocking.
void drain(transport::Context& context, std::vector<transport::Completion>& out);

}  // namespace imgcast::replicator
