// UcxCore: the state one UCX Context shares with its regions, listeners and endpoints (each holds
// a shared_ptr, so the worker outlives them all): the ucp context and worker, the epoll set
// that combines the worker's event fd with a wake-up eventfd, the queue of completions for the
// next poll(), and the map from ucp endpoints to ours (active messages name their sender by
// its reply endpoint).
#pragma once

#include <ucp/api/ucp.h>

#include <unordered_map>
#include <vector>

#include "transport/completion_queue.h"
#include "transport/context.h"
#include "transport/ucx/handles.h"
#include "transport/unique_fd.h"
#include "transport/writable_regions.h"

namespace imgcast::transport::ucx {

class UcxEndpoint;

// Active message ids.
inline constexpr unsigned kControlMessage = 1;  // Endpoint::send_control bytes
inline constexpr unsigned kWriteNotice = 2;     // after a put: {imm, length, notice}

struct UcxCore {
  ContextOptions options;
  ContextHandle context;
  WorkerHandle worker;
  UniqueFd epoll;
  // Its wake-up fd, in the epoll set beside the worker's, is signalled when a completion is
  // queued outside poll(), and by queue.signal() after a post, so the owner's next poll()
  // progresses what was just posted. poll() drains it on every return.
  CompletionQueue queue;
  std::unordered_map<ucp_ep_h, UcxEndpoint*> endpoints;
  WritableRegions writable;  // regions with kRemoteWrite: their grants decide whose notices count

  // Progresses the worker until it has nothing more to do right now.
  void progress_all();
};

// "UCX <call> failed: <ucs status string>"
std::string describe(const char* call, ucs_status_t status);

}  // namespace imgcast::transport::ucx
