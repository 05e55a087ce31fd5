// The options every connected TCP socket of the backend runs with, dialled or accepted alike.
#pragma once

#include "transport/context.h"

namespace imgcast::transport::tcp {

// TCP_NODELAY (a small control message must not wait for more bytes), and with
// options.dead_peer_after keepalive probes and TCP_USER_TIMEOUT, so a peer host that goes silent
// turns into an error on the socket instead of a wait without end. Best effort: an option the
// kernel refuses leaves that socket with its default (nothing to report to anyone).
void tune_socket(int socket, const ContextOptions& options) noexcept;

}  // namespace imgcast::transport::tcp
