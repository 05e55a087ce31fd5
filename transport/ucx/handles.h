// RAII for every ucp_* handle the UCX backend owns: unique_ptr with a deleter per handle type.
// Deleters never throw and tolerate null. A memory handle needs its context to unmap, so its
// deleter carries the context.
#pragma once

#include <ucp/api/ucp.h>

#include <memory>

namespace imgcast::transport::ucx {

struct ContextDeleter {
  void operator()(ucp_context* context) const noexcept { ucp_cleanup(context); }
};
using ContextHandle = std::unique_ptr<ucp_context, ContextDeleter>;

struct WorkerDeleter {
  void operator()(ucp_worker* worker) const noexcept { ucp_worker_destroy(worker); }
};
using WorkerHandle = std::unique_ptr<ucp_worker, WorkerDeleter>;

struct ConfigDeleter {
  void operator()(ucp_config_t* config) const noexcept { ucp_config_release(config); }
};
using ConfigHandle = std::unique_ptr<ucp_config_t, ConfigDeleter>;

struct ListenerDeleter {
  void operator()(ucp_listener* listener) const noexcept { ucp_listener_destroy(listener); }
};
using ListenerHandle = std::unique_ptr<ucp_listener, ListenerDeleter>;

struct MemDeleter {
  ucp_context_h context = nullptr;
  void operator()(ucp_mem* memh) const noexcept { ucp_mem_unmap(context, memh); }
};
using MemHandle = std::unique_ptr<ucp_mem, MemDeleter>;

struct RkeyDeleter {
  void operator()(ucp_rkey* rkey) const noexcept { ucp_rkey_destroy(rkey); }
};
using RkeyHandle = std::unique_ptr<ucp_rkey, RkeyDeleter>;

struct RkeyBufferDeleter {
  void operator()(void* buffer) const noexcept { ucp_rkey_buffer_release(buffer); }
};
using RkeyBufferHandle = std::unique_ptr<void, RkeyBufferDeleter>;

}  // namespace imgcast::transport::ucx
