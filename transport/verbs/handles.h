// RAII for every rdma_cm and verbs handle the verbs backend owns: unique_ptr with one deleter
// per handle type. Deleters tolerate null, never throw, and log a failed destroy (a destroy
// that fails means a resource is still in use: a QP still attached, an event not acked).
// A QP made by rdma_create_qp belongs to its cm id, so its deleter carries the id.
#pragma once

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>

#include "transport/log.h"

namespace imgcast::transport::verbs {

namespace detail {
inline void log_destroy_failure(const char* what, int result) noexcept {
  if (result != 0) {
    // errno for the rdma_cm calls, the returned value for the verbs ones.
    const int error = result > 0 ? result : errno;
    log().warn("verbs: {} failed: {}", what, std::strerror(error));
  }
}
}  // namespace detail

struct EventChannelDeleter {
  void operator()(rdma_event_channel* channel) const noexcept {
    rdma_destroy_event_channel(channel);  // returns nothing
  }
};
using EventChannelHandle = std::unique_ptr<rdma_event_channel, EventChannelDeleter>;

struct CmIdDeleter {
  void operator()(rdma_cm_id* id) const noexcept {
    detail::log_destroy_failure("rdma_destroy_id", rdma_destroy_id(id));
  }
};
using CmIdHandle = std::unique_ptr<rdma_cm_id, CmIdDeleter>;

struct DeviceListDeleter {
  void operator()(ibv_context** list) const noexcept { rdma_free_devices(list); }
};
using DeviceListHandle = std::unique_ptr<ibv_context*, DeviceListDeleter>;

struct PdDeleter {
  void operator()(ibv_pd* pd) const noexcept {
    detail::log_destroy_failure("ibv_dealloc_pd", ibv_dealloc_pd(pd));
  }
};
using PdHandle = std::unique_ptr<ibv_pd, PdDeleter>;

struct MrDeleter {
  void operator()(ibv_mr* mr) const noexcept {
    detail::log_destroy_failure("ibv_dereg_mr", ibv_dereg_mr(mr));
  }
};
using MrHandle = std::unique_ptr<ibv_mr, MrDeleter>;

struct CompChannelDeleter {
  void operator()(ibv_comp_channel* channel) const noexcept {
    detail::log_destroy_failure("ibv_destroy_comp_channel", ibv_destroy_comp_channel(channel));
  }
};
using CompChannelHandle = std::unique_ptr<ibv_comp_channel, CompChannelDeleter>;

struct CqDeleter {
  void operator()(ibv_cq* cq) const noexcept {
    detail::log_destroy_failure("ibv_destroy_cq", ibv_destroy_cq(cq));
  }
};
using CqHandle = std::unique_ptr<ibv_cq, CqDeleter>;

// A QP made with ibv_create_qp (the probe's).
struct QpDeleter {
  void operator()(ibv_qp* qp) const noexcept {
    detail::log_destroy_failure("ibv_destroy_qp", ibv_destroy_qp(qp));
  }
};
using QpHandle = std::unique_ptr<ibv_qp, QpDeleter>;

// A QP made with rdma_create_qp on `id` (a connection's).
struct CmQpDeleter {
  rdma_cm_id* id = nullptr;
  void operator()(ibv_qp* /*qp*/) const noexcept { rdma_destroy_qp(id); }  // returns nothing
};
using CmQpHandle = std::unique_ptr<ibv_qp, CmQpDeleter>;

// Memory for the backend's own send and receive buffers, on the NIC's NUMA node where libnuma
// knows it (numa_alloc_onnode), else page-aligned from the heap. Zeroed. Move-only.
class NumaBuffer {
 public:
  NumaBuffer() = default;
  // Throws Error when the memory cannot be had.
  NumaBuffer(std::size_t bytes, int numa_node);
  ~NumaBuffer();
  NumaBuffer(NumaBuffer&& other) noexcept;
  NumaBuffer& operator=(NumaBuffer&& other) noexcept;

  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  void release() noexcept;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  bool from_numa_ = false;
};

}  // namespace imgcast::transport::verbs
