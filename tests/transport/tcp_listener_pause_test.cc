// A TCP listener out of file descriptors (accept4: EMFILE) with connections waiting in its
// backlog: level-triggered epoll would report it again at once, forever. It must pause instead
// (poll() blocks, wait_fd() stays quiet) and accept the waiting connections once descriptors
// are back, waking a caller blocked on wait_fd() for it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/host_port.h"
#include "transport/tcp/tcp_context.h"

namespace imgcast::transport::tcp {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A plain connection to 127.0.0.1:port, left in the listener's backlog.
int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
  return fd;
}

TEST(TcpListenerPause, OutOfDescriptorsItPausesInsteadOfSpinningAndResumesAfterwards) {
  auto context = make_tcp_context({});
  auto listener = context->listen({});
  const auto port = HostPort::parse(listener->address())->port;
  std::vector<int> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(connect_to(port));
  }

  // From here every new descriptor is over the limit: the lowest free number is the limit.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  const int lowest_free = ::dup(0);
  ASSERT_GE(lowest_free, 0);
  ::close(lowest_free);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);

  // Spinning, each poll would return at once with nothing: thousands of them in 350 ms. Paused,
  // a poll blocks its full 50 ms, bar the one that meets EMFILE and the timer's few wake-ups.
  std::vector<Completion> events;
  int polls = 0;
  for (const auto until = Clock::now() + 350ms; Clock::now() < until; ++polls) {
    ASSERT_TRUE(context->poll(events, 50ms).is_ok());
  }
  EXPECT_TRUE(events.empty()) << "nothing could be accepted";
  EXPECT_LE(polls, 20) << "the listener spun";

  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  // A caller blocked on wait_fd() wakes when the pause is over, with nothing else to wake it.
  pollfd waiter{context->wait_fd(), POLLIN, 0};
  const auto wait_start = Clock::now();
  ASSERT_EQ(::poll(&waiter, 1, 2000), 1) << "wait_fd never woke after the pause";
  EXPECT_LT(Clock::now() - wait_start, 1s);
  std::size_t accepted = 0;
  for (const auto until = Clock::now() + 2s; accepted < clients.size() && Clock::now() < until;) {
    events.clear();
    ASSERT_TRUE(context->poll(events, 20ms).is_ok());
    for (const auto& event : events) {
      accepted += std::holds_alternative<PeerAccepted>(event);
    }
  }
  EXPECT_EQ(accepted, clients.size()) << "the backlog was accepted once descriptors were back";
  for (int fd : clients) {
    ::close(fd);
  }
}

}  // namespace
}  // namespace imgcast::transport::tcp
