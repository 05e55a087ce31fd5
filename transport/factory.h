// Factory: which backends exist in this build and on this machine, and how to make one.
#pragma once

#include <memory>
#include <string_view>

#include "transport/availability.h"
#include "transport/context.h"
#include "transport/kind.h"

namespace imgcast::transport {

// Whether `kind` is built in and can run here (verbs: opens a device and creates a real QP).
Availability probe(Kind kind);

// Throws Error (kUnavailable) naming the reason when the backend cannot be made.
std::unique_ptr<Context> make_context(Kind kind, const ContextOptions& options = {});

// "tcp" | "ucx" | "verbs" | "auto" -> Kind. auto prefers verbs, then ucx, then tcp, and logs why
// each better one was skipped. Throws Error (kInvalidArgument) for an unknown name and
// (kUnavailable) when a named backend is not usable.
Kind choose_kind(std::string_view requested);

}  // namespace imgcast::transport
