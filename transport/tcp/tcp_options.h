// TcpOptions: what only the TCP backend takes, beside the neutral ContextOptions
// (make_tcp_context). The defaults are what the CLI runs with.
#pragma once

#include <cstddef>

namespace imgcast::transport::tcp {

struct TcpOptions {
  // Bytes one connection may receive per wake-up before the others get their turn.
  std::size_t receive_budget = std::size_t{8} << 20;
};

}  // namespace imgcast::transport::tcp
