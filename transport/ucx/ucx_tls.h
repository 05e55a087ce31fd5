// What UCX_TLS lets imgcast do, decided before ucp_init: UCX 1.13 gives imgcast's endpoints
// (client-server, peer-failure error handling, puts into regions imgcast maps itself) no
// shared-memory lane it can use (docs/rdma.md, "Shared memory"), so a transport set without tcp
// or an RDMA transport cannot connect two nodes. UCX itself only finds that out per endpoint,
// as "Destination is unreachable", which the replicator would answer by re-parenting forever.
#pragma once

#include <string>
#include <string_view>

namespace imgcast::transport::ucx {

struct TlsCheck {
  bool tcp = true;      // the set may include UCX's tcp transport (its segment sizes matter)
  std::string problem;  // empty: usable; else one line naming what is missing
};

// `tls` is UCX_TLS as set (nullptr: unset, i.e. "all"); `rdma_device`: this host has one
// (/sys/class/infiniband), so an exclusion list ("^tcp") still leaves a carrier.
TlsCheck check_tls(const char* tls, bool rdma_device);

}  // namespace imgcast::transport::ucx
