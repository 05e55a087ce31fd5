#include "transport/addr_info.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include "transport/error.h"

namespace imgcast::transport {

AddrInfo resolve(const std::string& host, std::uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* result = nullptr;
  const std::string service = std::to_string(port);
  const int rc =
      ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0) {
    throw Error(StatusCode::kUnavailable,
                fmt::format("cannot resolve host '{}': {}", host, ::gai_strerror(rc)));
  }
  return AddrInfo(result);
}

}  // namespace imgcast::transport
