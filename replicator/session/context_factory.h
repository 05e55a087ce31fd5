// ContextFactory: how a session gets its transport Contexts. The CLI passes one in
// (cli/context_factory.cc), so the replicator never links a backend.
#pragma once

#include <functional>
#include <memory>

#include "transport/context.h"
#include "transport/kind.h"

namespace imgcast::replicator {

// tcp_fallback: --transport auto chose an RDMA kind; links whose RDMA setup fails run on TCP
// (ContextOptions::tcp_fallback).
using ContextFactory =
    std::function<std::unique_ptr<transport::Context>(transport::Kind, bool tcp_fallback)>;

}  // namespace imgcast::replicator
