// HostPort: the "host:port" text every backend's Listener hands out as its opaque address
// ("[v6]:port" for IPv6 literals), its parser, and the names of socket addresses in messages.
// Backend-neutral: TCP, UCX and verbs all listen and connect by IP address and port, so the
// address type lives beside the interface, not in one backend (design README, "Lessons").
// Pure functions; any thread.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace imgcast::transport {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;
  // nullopt unless the bytes are printable "host:port" with a port in 1..65535.
  static std::optional<HostPort> parse(std::span<const std::byte> bytes);
  // What Context::connect does with the address it is given: parse, or throw Error
  // (kInvalidArgument) "malformed <backend> address '<bytes>' (expected host:port)".
  static HostPort parse_address(std::span<const std::byte> bytes, std::string_view backend);
};

// An address blob as it can go into a one-line error: at most 64 characters, anything
// unprintable shown as '?' (the bytes came from a peer or a store).
std::string printable(std::span<const std::byte> bytes);

// "10.0.0.2:4711" / "[fe80::1]:4711" for an IPv4 or IPv6 socket address; "unknown peer" for
// nullptr or any other family.
std::string sockaddr_name(const sockaddr* address);

}  // namespace imgcast::transport
