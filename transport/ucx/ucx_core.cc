#include "transport/ucx/ucx_core.h"

#include <fmt/format.h>
#include <unistd.h>

#include "transport/ucx/ucx_endpoint.h"

namespace imgcast::transport::ucx {

std::string describe(const char* call, ucs_status_t status) {
  return fmt::format("UCX {} failed: {}", call, ucs_status_string(status));
}

void UcxCore::signal() {
  if (!in_poll) {
    const std::uint64_t one = 1;
    (void)!::write(wakeup.get(), &one, sizeof one);
  }
}

void UcxCore::complete(Completion completion) {
  if (ready.empty()) {
    signal();
  }
  ready.push_back(std::move(completion));
}

void UcxCore::forget(const Endpoint* endpoint) {
  std::erase_if(ready, [endpoint](const Completion& c) {
    return std::visit(
        [endpoint](const auto& e) {
          using T = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<T, WriteDone>)
            return e.endpoint == endpoint;
          if constexpr (std::is_same_v<T, WriteArrived> || std::is_same_v<T, ControlArrived>) {
            return e.from == endpoint;
          }
          if constexpr (std::is_same_v<T, PeerFailed>)
            return e.peer == endpoint;
          return false;
        },
        c);
  });
}

void UcxCore::progress_all() {
  while (ucp_worker_progress(worker.get()) != 0) {
  }
}

}  // namespace imgcast::transport::ucx
