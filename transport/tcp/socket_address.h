// Socket addresses for the TCP backend: the "host:port" text a Listener hands out as its opaque
// address ("[v6]:port" for IPv6 literals), its parser, and name resolution.
#pragma once

#include <netdb.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace imgcast::transport::tcp {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;
  // nullopt unless the bytes are printable "host:port" with a port in 1..65535.
  static std::optional<HostPort> parse(std::span<const std::byte> bytes);
};

// getaddrinfo results, freed on destruction.
struct AddrInfoDeleter {
  void operator()(addrinfo* info) const noexcept { ::freeaddrinfo(info); }
};
using AddrInfo = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// Throws Error (kUnavailable) naming the host when it does not resolve.
AddrInfo resolve(const std::string& host, std::uint16_t port, bool passive);

// An address blob as it can go into a one-line error: at most 64 characters, anything
// unprintable shown as '?' (the bytes came from a peer or a store).
std::string printable(std::span<const std::byte> bytes);

// "10.0.0.2:4711" for a connected socket's peer.
std::string peer_name_of(int socket);

}  // namespace imgcast::transport::tcp
