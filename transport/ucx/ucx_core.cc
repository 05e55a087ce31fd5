#include "transport/ucx/ucx_core.h"

#include <fmt/format.h>

#include "transport/ucx/ucx_endpoint.h"

namespace imgcast::transport::ucx {

std::string describe(const char* call, ucs_status_t status) {
  return fmt::format("UCX {} failed: {}", call, ucs_status_string(status));
}

void UcxCore::progress_all() {
  while (ucp_worker_progress(worker.get()) != 0) {
  }
}

}  // namespace imgcast::transport::ucx
