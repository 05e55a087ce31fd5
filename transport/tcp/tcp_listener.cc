#include "transport/tcp/tcp_listener.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

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

  timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.ptr = static_cast<EpollHandler*>(this);
  epoll_event timer_event{};
  timer_event.events = EPOLLIN;
  timer_event.data.ptr = static_cast<EpollHandler*>(&resume_timer_);
  if (!timer_.valid() ||
      ::epoll_ctl(core_->epoll.get(), EPOLL_CTL_ADD, timer_.get(), &timer_event) != 0) {
    throw Error(StatusCode::kIoError, fmt::format("cannot make the resume timer of listener {}: {}",
                                                  name_, std::strerror(errno)));
  }
  if (::epoll_ctl(core_->epoll.get(), EPOLL_CTL_ADD, socket_.get(), &event) != 0) {
    const int error = errno;
    ::epoll_ctl(core_->epoll.get(), EPOLL_CTL_DEL, timer_.get(), nullptr);
    throw Error(StatusCode::kIoError,
                fmt::format("cannot watch listener {}: {}", name_, std::strerror(error)));
  }
}

TcpListener::~TcpListener() {
  if (!paused_) {
    ::epoll_ctl(core_->epoll.get(), EPOLL_CTL_DEL, socket_.get(), nullptr);
  }
  ::epoll_ctl(core_->epoll.get(), EPOLL_CTL_DEL, timer_.get(), nullptr);
}

void TcpListener::on_events(std::uint32_t /*events*/) {
  for (;;) {
    UniqueFd accepted(::accept4(socket_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!accepted.valid()) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        pause(errno);
        return;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        log().warn("listener {}: accept failed: {}", name_, std::strerror(errno));
      }
      return;
    }
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

bool TcpListener::arm_timer() const noexcept {
  itimerspec when{};
  when.it_value.tv_sec = kPause.count() / 1000;
  when.it_value.tv_nsec = (kPause.count() % 1000) * 1000000;
  return ::timerfd_settime(timer_.get(), 0, &when, nullptr) == 0;
}

void TcpListener::pause(int error) {
  ++deferred_;
  const auto now = LogRateLimit::Clock::now();
  if (pause_log_.allow(now)) {
    log().warn(
        "listener {}: cannot accept connections ({}): pausing them {} ms at a time; {} "
        "accept(s) deferred since the last such line (at most one per {} s)",
        name_, std::strerror(error), kPause.count(), deferred_, kPauseLogEvery.count());
    deferred_ = 0;
  }
  // The timer first: a listener out of the epoll set with no timer to bring it back would never
  // accept again, while one left in only costs CPU until descriptors are free.
  if (!arm_timer()) {
    log().debug("listener {}: cannot arm its resume timer: {}", name_, std::strerror(errno));
    return;
  }
  if (::epoll_ctl(core_->epoll.get(), EPOLL_CTL_DEL, socket_.get(), nullptr) == 0) {
    paused_ = true;
  }
}

void TcpListener::resume() {
  // Drained, or level-triggered epoll would report the expired timer again and again.
  std::uint64_t expirations = 0;
  (void)!::read(timer_.get(), &expirations, sizeof expirations);
  if (!paused_) {
    return;
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.ptr = static_cast<EpollHandler*>(this);
  if (::epoll_ctl(core_->epoll.get(), EPOLL_CTL_ADD, socket_.get(), &event) == 0) {
    paused_ = false;  // connections still waiting in the backlog are reported by the next poll
    return;
  }
  // Still short of memory (ENOMEM): try again after another pause.
  if (!arm_timer()) {
    log().error("listener {}: cannot watch its socket again, nor arm its resume timer: {}", name_,
                std::strerror(errno));
  }
}

}  // namespace imgcast::transport::tcp
