#include "transport/tcp/tcp_core.h"

#include <sys/random.h>
#include <unistd.h>

#include "transport/error.h"

namespace imgcast::transport::tcp {

TcpCore::TcpCore(const ContextOptions& o, const TcpOptions& t) : options(o), tcp_options(t) {}

void TcpCore::complete(Completion completion) {
  if (ready.empty() && !in_poll) {
    const std::uint64_t one = 1;
    (void)!::write(wakeup.get(), &one, sizeof one);
  }
  ready.push_back(std::move(completion));
}

void TcpCore::forget(const Endpoint* endpoint) { forget_completions(ready, endpoint); }

std::uint64_t random_u64() {
  std::uint64_t value = 0;
  if (::getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) {
    throw Error(StatusCode::kIoError, "the kernel random generator (getrandom) failed");
  }
  return value;
}

}  // namespace imgcast::transport::tcp
