// run_agent: what `imgcast agent` does on every host but the root. It joins the root's control
// channel, receives the plan, stages its copy, relays chunks to its children, and reports.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "replicator/errors.h"
#include "replicator/session/context_factory.h"

namespace imgcast::replicator {

struct AgentOptions {
  std::string control_address;  // "host:port" of the root's control listener
  int rank = 0;
  std::string host;         // this host's name in the job's host list
  std::string secret_line;  // read from standard input by the CLI
  std::chrono::milliseconds connect_timeout{30000};
  // The data listener: a fixed port (0: ephemeral, the default), and what to tell the others
  // when they must reach it through a port forward or a proxy (empty host, port 0: as bound).
  std::uint16_t data_port = 0;
  std::string advertise_host;
  std::uint16_t advertise_port = 0;
  // Listen on every address (--bind any) instead of `host`'s (listen_address.h).
  bool bind_any = false;
  // --cache runs: called with the descriptor of the cache entry this node's copy is, pinned
  // (node_cache.h), once it is; the caller may dup() it to keep the entry in use after the run
  // (imgcast hook holds it while CMD runs). Optional.
  std::function<void(int entry_fd)> keep_cache_pin;
};

// Returns the process exit code (ExitCode). Throws nothing: every failure is reported to the
// root when the root can still be reached, and logged.
ExitCode run_agent(const AgentOptions& options, const ContextFactory& make_context);

}  // namespace imgcast::replicator
