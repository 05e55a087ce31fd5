// AddrInfo: name resolution for the backends that listen and connect by host and port (all of
// them: TCP sockets, UCX's sockaddr connections, rdma_cm). getaddrinfo results, freed on
// destruction. Setup only: resolve() may block on DNS, so never call it from the data path.
#pragma once

#include <netdb.h>

#include <cstdint>
#include <memory>
#include <string>

namespace imgcast::transport {

struct AddrInfoDeleter {
  void operator()(addrinfo* info) const noexcept { ::freeaddrinfo(info); }
};
using AddrInfo = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// Stream-socket addresses of `host` (empty: any, with `passive`) at `port`. `passive`: for
// bind(). Throws Error (kUnavailable) naming the host when it does not resolve.
AddrInfo resolve(const std::string& host, std::uint16_t port, bool passive);

}  // namespace imgcast::transport
