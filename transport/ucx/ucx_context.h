// The UCX backend's entry points. Everything else in transport/ucx/ is private to the backend.
// UCX reads its UCX_* environment variables as usual (UCX_TLS, UCX_NET_DEVICES, ...).
#pragma once

#include <memory>

#include "transport/availability.h"
#include "transport/context.h"

namespace imgcast::transport::ucx {

// Throws Error when UCX cannot create a context and worker here.
std::unique_ptr<Context> make_ucx_context(const ContextOptions& options);
// Creates a context and a worker to see that UCX works here; says whether it found a
// transport that moves data by RDMA (what --transport auto looks for).
Availability probe_ucx(bool& rdma_capable);
// Whether the kernel lists an RDMA device (/sys/class/infiniband): one directory read, no UCX
// call. Without one, probe_ucx() cannot report rdma_capable, so --transport auto skips it.
bool has_rdma_device();

}  // namespace imgcast::transport::ucx
