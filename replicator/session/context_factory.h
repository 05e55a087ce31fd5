// ContextFactory: how a session gets its transport Contexts. The CLI passes one in
// (cli/context_factory.cc), so the replicator never links a backend.
#pragma once

#include <functional>
#include <memory>

#include "transport/context.h"
#include "transport/kind.h"

namespace imgcast::replicator {

using ContextFactory = std::function<std::unique_ptr<transport::Context>(transport::Kind)>;

}  // namespace imgcast::replicator
