#include "transport/host_port.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <charconv>

#include "transport/endpoint.h"
#include "transport/error.h"

namespace imgcast::transport {

std::string HostPort::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return v6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

HostPort HostPort::parse_address(std::span<const std::byte> bytes, std::string_view backend) {
  std::optional<HostPort> target = parse(bytes);
  if (!target) {
    throw Error(
        StatusCode::kInvalidArgument,
        fmt::format("malformed {} address '{}' (expected host:port)", backend, printable(bytes)));
  }
  return *target;
}

std::optional<HostPort> HostPort::parse(std::span<const std::byte> bytes) {
  if (bytes.empty() || bytes.size() > Listener::kMaxAddressBytes)
    return std::nullopt;
  std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  for (char c : text) {
    if (c <= ' ' || c > '~')
      return std::nullopt;
  }
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3)
      return std::nullopt;
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  const char* first = text.data() + colon + 1;
  const char* last = text.data() + text.size();
  const auto [end, error] = std::from_chars(first, last, port);
  if (error != std::errc() || end != last || port == 0 || port > 65535)
    return std::nullopt;
  return HostPort{host, static_cast<std::uint16_t>(port)};
}

std::string printable(std::span<const std::byte> bytes) {
  constexpr std::size_t kShown = 64;
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < kShown; ++i) {
    const auto c = static_cast<char>(bytes[i]);
    out += c > ' ' && c <= '~' ? c : '?';
  }
  if (bytes.size() > kShown)
    out += "...";
  return out;
}

std::string sockaddr_name(const sockaddr* address) {
  char host[INET6_ADDRSTRLEN] = {};
  if (address != nullptr && address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    ::inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
    return HostPort{host, ntohs(v4->sin_port)}.to_string();
  }
  if (address != nullptr && address->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
    return HostPort{host, ntohs(v6->sin6_port)}.to_string();
  }
  return "unknown peer";
}

}  // namespace imgcast::transport
