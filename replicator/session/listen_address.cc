#include "replicator/session/listen_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "replicator/log.h"
#include "replicator/unique_fd.h"
#include "transport/error.h"

namespace imgcast::replicator {

namespace {

bool is_loopback(const sockaddr* address) {
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
  return address->sa_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
}

std::string numeric(const sockaddr* address, socklen_t length) {
  char host[NI_MAXHOST] = "";
  if (::getnameinfo(address, length, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0) {
    return {};
  }
  return host;
}

// A name that means this host's loopback by itself: "localhost", or an address literal.
bool names_loopback_itself(const std::string& name) {
  if (name == "localhost" || name.starts_with("localhost.")) {
    return true;
  }
  in_addr v4{};
  in6_addr v6{};
  return ::inet_pton(AF_INET, name.c_str(), &v4) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), &v6) == 1;
}

}  // namespace

std::string bind_address_for(const std::string& name, bool any) {
  if (any || name.empty()) {
    return kAnyAddress;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(name.c_str(), "0", &hints, &found) != 0) {
    return kAnyAddress;
  }
  std::string chosen = kAnyAddress;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (is_loopback(a->ai_addr) && !names_loopback_itself(name)) {
      log().debug("{} resolves to the loopback address {} here: listening on every address",
                  name, numeric(a->ai_addr, a->ai_addrlen));
      break;
    }
    // Ours when a socket binds to it (no packet is sent).
    UniqueFd probe(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (probe.valid() && ::bind(probe.get(), a->ai_addr, a->ai_addrlen) == 0) {
      chosen = numeric(a->ai_addr, a->ai_addrlen);
      break;
    }
  }
  ::freeaddrinfo(found);
  return chosen.empty() ? kAnyAddress : chosen;
}

std::unique_ptr<transport::Listener> listen_on(transport::Context& context,
                                               transport::ListenOptions options) {
  if (options.bind_host == kAnyAddress) {
    return context.listen(options);
  }
  try {
    return context.listen(options);
  } catch (const transport::Error& error) {
    log().info("cannot listen on {} ({}): listening on every address", options.bind_host,
               error.what());
    options.bind_host = kAnyAddress;
    return context.listen(options);
  }
}

}  // namespace imgcast::replicator
