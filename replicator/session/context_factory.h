// ContextFactory: how a session gets its transport Contexts. The CLI passes one in
// (cli/context_factory.cc), so the replicator never links a backend.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "transport/context.h"
#include "transport/kind.h"

namespace imgcast::replicator {

using ContextFactory = std::function<std::unique_ptr<transport::Context>(
    transport::Kind, const transport::ContextOptions&)>;

// The control channel's: its peers (the root, every agent) may be quiet for a long time, so a host
// that dies without a word (powered off, link cut) must still turn into an error: within about
// 10 s the root drops such an agent, and an agent whose root is gone cleans up and exits.
inline transport::ContextOptions control_context_options() {
  transport::ContextOptions options;
  options.dead_peer_after = std::chrono::seconds(10);
  return options;
}

// The data channel's. tcp_fallback: --transport auto chose an RDMA kind; links whose RDMA setup
// fails run on TCP (ContextOptions::tcp_fallback).
inline transport::ContextOptions data_context_options(bool tcp_fallback) {
  transport::ContextOptions options;
  options.tcp_fallback = tcp_fallback;
  return options;
}

}  // namespace imgcast::replicator
