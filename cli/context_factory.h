// The ContextFactory the CLI hands to the replicator: the only place that links the backends.
#pragma once

#include "replicator/session/context_factory.h"

namespace imgcast::cli {

replicator::ContextFactory context_factory();
// The absolute path of this executable, what agents run on the other hosts by default.
std::string self_path();

}  // namespace imgcast::cli
