#include "transport/tcp/socket_options.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>

namespace imgcast::transport::tcp {

void tune_socket(int socket, const ContextOptions& options) noexcept {
  const int on = 1;
  (void)::setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  const long long limit_ms = options.dead_peer_after.count();
  if (limit_ms <= 0) {
    return;
  }
  // Idle for 40 % of the limit, then three probes 20 % apart: a silent host is given up on at
  // about the limit. While data waits for its acknowledgement, the user timeout bounds the
  // retransmissions the same way (and, since it is set, ends the keepalive probing too).
  const int idle_s = static_cast<int>(std::max<long long>(1, limit_ms * 4 / 10 / 1000));
  const int interval_s = static_cast<int>(std::max<long long>(1, limit_ms * 2 / 10 / 1000));
  const int probes = 3;
  const unsigned user_timeout_ms = static_cast<unsigned>(std::min<long long>(limit_ms, 1u << 30));
  (void)::setsockopt(socket, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  (void)::setsockopt(socket, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
  (void)::setsockopt(socket, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s);
  (void)::setsockopt(socket, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
  (void)::setsockopt(socket, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms,
                     sizeof user_timeout_ms);
}

}  // namespace imgcast::transport::tcp
