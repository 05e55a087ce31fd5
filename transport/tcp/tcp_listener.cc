#include "transport/tcp/tcp_listener.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "transport/addr_info.h"
#include "transport/error.h"
#include "transport/host_port.h"
#include "transport/log.h"
#include "transport/tcp/socket_address.h"
#include "transport/tcp/tcp_endpoint.h"

namespace imgcast::transport::tcp {

TcpListener::TcpListener(std::shared_ptr<TcpCore> core, const ListenOptions& options)
    : core_(std::move(core)) {
  const AddrInfo info = resolve(options.bind_host, options.port, true);
  int last_error = 0;
  for (const addrinfo* a = info.get(); a != nullptr && !socket_.valid(); a = a->ai_next) {
    UniqueFd s(
        ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    const int on = 1;
    if (s.valid() && ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0 &&
        ::bind(s.get(), a->ai_addr, a->ai_addrlen) == 0 && ::listen(s.get(), SOMAXCONN) == 0) {
      socket_ = std::move(s);
    } else {
      last_error = errno;
    }
  }
  if (!socket_.valid()) {
    throw Error(StatusCode::kIoError, fmt::format("cannot listen on {}:{}: {}", options.bind_host,
                                                  options.port, std::strerror(last_error)));
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  ::getsockname(socket_.get(), reinterpret_cast<sockaddr*>(&bound), &length);
  const std::uint16_t port =
      ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  name_ = HostPort{options.advertise_host.empty() ? options.bind_host : options.advertise_host,
                   options.advertise_port != 0 ? options.advertise_port : port}
              .to_string();
  const auto* text = reinterpret_cast<const std::byte*>(name_.data());
  address_.assign(text, text + name_.size());

  epoll_event event{};
  event.events = EPOLLIN;
  event.data.ptr = static_cast<EpollHandler*>(this);
  if (::epoll_ctl(core_->epoll.get(), EPOLL_CTL_ADD, socket_.get(), &event) != 0) {
    throw Error(StatusCode::kIoError,
                fmt::format("cannot watch listener {}: {}", name_, std::strerror(errno)));
  }
}

TcpListener::~TcpListener() {
  ::epoll_ctl(core_->epoll.get(), EPOLL_CTL_DEL, socket_.get(), nullptr);
}

void TcpListener::on_events(std::uint32_t /*events*/) {
  for (;;) {
    UniqueFd accepted(::accept4(socket_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!accepted.valid()) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        log().warn("listener {}: accept failed: {}", name_, std::strerror(errno));
      }
      return;
    }
    const int on = 1;
    ::setsockopt(accepted.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    std::string peer = peer_name_of(accepted.get());
    try {
      auto endpoint = std::make_unique<TcpEndpoint>(core_, std::move(accepted), peer);
      core_->queue.complete(PeerAccepted{this, std::move(endpoint)});
    } catch (const Error& error) {
      // We run inside poll(), which must not throw: drop this connection (its peer sees EOF)
      // and keep listening.
      log().warn("listener {}: dropped the connection from {}: {}", name_, peer, error.what());
    }
  }
}

}  // namespace imgcast::transport::tcp
