#include "transport/factory.h"

#include <fmt/format.h>

#include <cstdlib>

#include "transport/error.h"
#include "transport/fallback/fallback_context.h"
#include "transport/log.h"
#include "transport/tcp/tcp_context.h"
#if IMGCAST_HAVE_UCX
#include "transport/ucx/ucx_context.h"
#endif
#if IMGCAST_HAVE_VERBS
#include "transport/verbs/verbs_context.h"
#endif

namespace imgcast::transport {

Availability probe(Kind kind) {
  switch (kind) {
    case Kind::kTcp:
      return {true, "TCP sockets"};
    case Kind::kUcx: {
#if IMGCAST_HAVE_UCX
      bool rdma = false;
      return ucx::probe_ucx(rdma);
#else
      return {false, "the UCX backend is not built in (configure with libucx-dev installed)"};
#endif
    }
    case Kind::kVerbs:
#if IMGCAST_HAVE_VERBS
      return verbs::probe_verbs();
#else
      return {false,
              "the verbs backend is not built in (configure with libibverbs-dev, librdmacm-dev "
              "and libnuma-dev installed)"};
#endif
  }
  return {false, "unknown transport"};
}

namespace {
// The backend itself, no fallback.
std::unique_ptr<Context> make_backend(Kind kind, const ContextOptions& options);
}  // namespace

std::unique_ptr<Context> make_context(Kind kind, const ContextOptions& options) {
  if (!options.tcp_fallback || kind == Kind::kTcp) {
    return make_backend(kind, options);
  }
  // --transport auto chose RDMA: a node where that backend cannot even start runs on TCP alone
  // (its peers see only its TCP address), and each link falls back on its own.
  std::unique_ptr<Context> rdma;
  std::string why_not;
  try {
    rdma = make_backend(kind, options);
  } catch (const Error& error) {
    why_not = error.what();
  }
  return fallback::make_fallback_context(std::move(rdma), tcp::make_tcp_context(options), why_not);
}

namespace {
std::unique_ptr<Context> make_backend(Kind kind, const ContextOptions& options) {
  if (kind == Kind::kTcp) {
    return tcp::make_tcp_context(options);
  }
#if IMGCAST_HAVE_UCX
  if (kind == Kind::kUcx) {
    return ucx::make_ucx_context(options);
  }
#endif
#if IMGCAST_HAVE_VERBS
  if (kind == Kind::kVerbs) {
    return verbs::make_verbs_context(options);
  }
#endif
  const Availability availability = probe(kind);
  throw Error(StatusCode::kUnavailable,
              fmt::format("transport {} is not usable: {}", to_string(kind), availability.reason));
}
}  // namespace

Kind choose_kind(std::string_view requested) {
  if (requested == "auto") {
    // verbs where an RDMA device is up; UCX when it found an RDMA-capable transport (over plain
    // tcp/shm it would only add overhead to what the TCP backend does); else TCP.
    const Availability verbs = probe(Kind::kVerbs);
    if (verbs.usable) {
      log().info("transport auto: chose verbs ({})", verbs.reason);
      return Kind::kVerbs;
    }
    log().info("transport auto: skipped verbs: {}", verbs.reason);
#if IMGCAST_HAVE_UCX
    // A test and diagnostic knob (docs/rdma.md): UCX over tcp/shm counts as RDMA-capable, so
    // auto's fallback can be exercised on a machine without an RDMA device.
    const char* as_rdma = std::getenv("IMGCAST_TEST_UCX_AS_RDMA");
    const bool test_as_rdma = as_rdma != nullptr && std::string_view(as_rdma) == "1";
    // Without a device UCX could only run over tcp/shm: not started at all, since a UCX context
    // and worker cost the root ~20 ms of every run, a cache hit's included.
    if (!test_as_rdma && !ucx::has_rdma_device()) {
      log().info("transport auto: skipped ucx: no RDMA device");
      log().info("transport auto: chose tcp");
      return Kind::kTcp;
    }
    bool rdma = false;
    const Availability ucx = ucx::probe_ucx(rdma);
    if (ucx.usable && !rdma && test_as_rdma) {
      log().info("transport auto: IMGCAST_TEST_UCX_AS_RDMA=1 counts UCX over tcp/shm as RDMA");
      rdma = true;
    }
    if (ucx.usable && rdma) {
      log().info("transport auto: chose ucx ({})", ucx.reason);
      return Kind::kUcx;
    }
    log().info("transport auto: skipped ucx: {}", ucx.usable ? "no RDMA device" : ucx.reason);
#else
    log().info("transport auto: skipped ucx: {}", probe(Kind::kUcx).reason);
#endif
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
