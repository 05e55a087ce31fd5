// The TCP backend's entry point. Everything else in transport/tcp/ is private to the backend.
#pragma once

#include <memory>

#include "transport/context.h"
#include "transport/tcp/tcp_options.h"

namespace imgcast::transport::tcp {

// Throws Error when the epoll set cannot be created.
std::unique_ptr<Context> make_tcp_context(const ContextOptions& options,
                                          const TcpOptions& tcp_options = {});

}  // namespace imgcast::transport::tcp
