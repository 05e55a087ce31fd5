#include "transport/tcp/socket_address.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/socket.h>

#include <charconv>

#include "transport/endpoint.h"
#include "transport/error.h"

namespace imgcast::transport::tcp {

std::string HostPort::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return v6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
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

std::string peer_name_of(int socket) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getpeername(socket, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return "unknown peer";
  }
  char host[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    ::inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
    return HostPort{host, ntohs(v4->sin_port)}.to_string();
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
  ::inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
  return HostPort{host, ntohs(v6->sin6_port)}.to_string();
}

}  // namespace imgcast::transport::tcp
