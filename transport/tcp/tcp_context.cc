#include "transport/tcp/tcp_context.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>

#include "transport/addr_info.h"
#include "transport/error.h"
#include "transport/host_port.h"
#include "transport/tcp/tcp_core.h"
#include "transport/tcp/tcp_endpoint.h"
#include "transport/tcp/tcp_listener.h"
#include "transport/tcp/tcp_memory_region.h"

namespace imgcast::transport::tcp {

namespace {

using Clock = std::chrono::steady_clock;

// One connection attempt to one resolved address, bounded by `deadline`. Returns the connected
// socket, or an invalid UniqueFd with `error` set.
UniqueFd try_connect(const addrinfo& a, Clock::time_point deadline, int& error) {
  UniqueFd s(::socket(a.ai_family, a.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a.ai_protocol));
  if (!s.valid()) {
    error = errno;
    return {};
  }
  if (::connect(s.get(), a.ai_addr, a.ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      error = errno;
      return {};
    }
    int ready = 0;
    do {  // a signal (EINTR) must neither end the wait early nor stretch it past the deadline
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{s.get(), POLLOUT, 0};
      ready = ::poll(&p, 1, static_cast<int>(std::clamp<long long>(left.count(), 0, INT_MAX)));
    } while (ready < 0 && errno == EINTR);
    if (ready <= 0) {
      error = ready == 0 ? ETIMEDOUT : errno;
      return {};
    }
    socklen_t length = sizeof error;
    ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0)
      return {};
  }
  return s;  // TcpEndpoint sets its options (socket_options.h)
}

class TcpContext final : public Context {
 public:
  TcpContext(const ContextOptions& options, const TcpOptions& tcp_options)
      : core_(std::make_shared<TcpCore>(options, tcp_options)) {
    core_->epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
    const bool have_wakeup = core_->queue.open_wakeup();
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = nullptr;
    if (!core_->epoll.valid() || !have_wakeup ||
        ::epoll_ctl(core_->epoll.get(), EPOLL_CTL_ADD, core_->queue.wakeup_fd(), &event) != 0) {
      throw Error(StatusCode::kIoError,
                  fmt::format("cannot create an epoll set: {}", std::strerror(errno)));
    }
  }

  Kind kind() const noexcept override { return Kind::kTcp; }

  std::unique_ptr<MemoryRegion> register_memory(std::span<std::byte> memory, Access access,
                                                int file = -1) override {
    return std::make_unique<TcpMemoryRegion>(core_, memory, access, file);
  }

  std::unique_ptr<Listener> listen(const ListenOptions& options) override {
    return std::make_unique<TcpListener>(core_, options);
  }

  std::unique_ptr<Endpoint> connect(std::span<const std::byte> address,
                                    std::chrono::milliseconds timeout) override {
    const HostPort target = HostPort::parse_address(address, "TCP");
    const std::string name = target.to_string();
    const auto deadline = Clock::now() + timeout;
    int error = 0;
    // No retry on a refused connection: a listener exists before its address is handed out, so
    // "refused" means the peer is gone, and waiting would only delay the failure.
    const AddrInfo info = resolve(target.host, target.port, false);
    for (const addrinfo* a = info.get(); a != nullptr; a = a->ai_next) {
      UniqueFd s = try_connect(*a, deadline, error);
      if (s.valid()) {
        return std::make_unique<TcpEndpoint>(core_, std::move(s), name);
      }
    }
    if (error == ETIMEDOUT) {
      throw Error(StatusCode::kTimeout,
                  fmt::format("connect to {} timed out after {} ms", name, timeout.count()));
    }
    throw Error(StatusCode::kIoError,
                fmt::format("connect to {} failed: {}", name, std::strerror(error)));
  }

  Status poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override {
    // Completions made since the last poll (e.g. sends that left at once) come first, and
    // then we only look, without blocking.
    const int wait_ms =
        core_->queue.empty() ? static_cast<int>(std::min<long long>(timeout.count(), INT_MAX)) : 0;
    std::array<epoll_event, 64> events;
    const int n = ::epoll_wait(core_->epoll.get(), events.data(), events.size(), wait_ms);
    if (n < 0 && errno != EINTR) {
      return {StatusCode::kIoError, fmt::format("epoll_wait failed: {}", std::strerror(errno))};
    }
    core_->queue.set_in_poll(true);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        core_->queue.drain_wakeup();
        continue;
      }
      static_cast<EpollHandler*>(events[i].data.ptr)->on_events(events[i].events);
    }
    core_->queue.set_in_poll(false);
    core_->queue.take_all(out);
    return Status::ok();
  }

  int wait_fd() const noexcept override { return core_->epoll.get(); }

 private:
  std::shared_ptr<TcpCore> core_;
};

}  // namespace

std::unique_ptr<Context> make_tcp_context(const ContextOptions& options,
                                          const TcpOptions& tcp_options) {
  return std::make_unique<TcpContext>(options, tcp_options);
}

}  // namespace imgcast::transport::tcp
