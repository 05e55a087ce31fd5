#include "transport/factory.h"

#include <fmt/format.h>

#include "transport/error.h"
#include "transport/log.h"
#include "transport/tcp/tcp_context.h"

namespace imgcast::transport {

Availability probe(Kind kind) {
  switch (kind) {
    case Kind::kTcp:
      return {true, "TCP sockets"};
    case Kind::kUcx:
      return {false, "the UCX backend is not built in (it arrives with a later release)"};
    case Kind::kVerbs:
      return {false, "the verbs backend is not built in (it arrives with a later release)"};
  }
  return {false, "unknown transport"};
}

std::unique_ptr<Context> make_context(Kind kind, const ContextOptions& options) {
  if (kind == Kind::kTcp) {
    return tcp::make_tcp_context(options);
  }
  const Availability availability = probe(kind);
  throw Error(StatusCode::kUnavailable,
              fmt::format("transport {} is not usable: {}", to_string(kind), availability.reason));
}

Kind choose_kind(std::string_view requested) {
  if (requested == "auto") {
    for (Kind candidate : {Kind::kVerbs, Kind::kUcx}) {
      const Availability availability = probe(candidate);
      if (availability.usable) {
        log().info("transport auto: chose {} ({})", to_string(candidate), availability.reason);
        return candidate;
      }
      log().info("transport auto: skipped {}: {}", to_string(candidate), availability.reason);
    }
    log().info("transport auto: chose tcp");
    return Kind::kTcp;
  }
  const std::optional<Kind> kind = parse_kind(requested);
  if (!kind) {
    throw Error(StatusCode::kInvalidArgument,
                fmt::format("unknown transport '{}': use tcp, ucx, verbs or auto", requested));
  }
  const Availability availability = probe(*kind);
  if (!availability.usable) {
    throw Error(StatusCode::kUnavailable,
                fmt::format("transport {} is not usable here: {}; use --transport tcp", requested,
                            availability.reason));
  }
  return *kind;
}

}  // namespace imgcast::transport
