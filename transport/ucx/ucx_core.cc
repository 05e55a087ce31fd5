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

void UcxCore::forget(const Endpoint* endpoint) { forget_completions(ready, endpoint); }

void UcxCore::progress_all() {
  while (ucp_worker_progress(worker.get()) != 0) {
  }
}

}  // namespace imgcast::transport::ucx
