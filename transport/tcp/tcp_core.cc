#include "transport/tcp/tcp_core.h"

#include <sys/random.h>

#include "transport/error.h"

namespace imgcast::transport::tcp {

TcpCore::TcpCore(const ContextOptions& o, const TcpOptions& t) : options(o), tcp_options(t) {}

std::uint64_t random_u64() {
  std::uint64_t value = 0;
  if (::getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) {
    throw Error(StatusCode::kIoError, "the kernel random generator (getrandom) failed");
  }
  return value;
}

}  // namespace imgcast::transport::tcp
