// The verbs backend's entry points. Everything else in transport/verbs/ is private to it.
// IMGCAST_RDMA_DEVICE=mlx5_0:1 picks the device and port (device_spec.h); IMGCAST_RDMA_MR_BYTES
// the MR segment size (verbs_memory_region.h); IMGCAST_RDMA_NUMA_BIND=0 keeps the calling
// thread where it is instead of moving it to the device's NUMA node; IMGCAST_RDMA_POLL_US=N
// (0..10000, default 0) lets poll() busy-poll up to N µs before it sleeps on the channel.
#pragma once

#include <memory>

#include "transport/availability.h"
#include "transport/context.h"

namespace imgcast::transport::verbs {

// Throws Error (kUnavailable) when no usable device is there.
std::unique_ptr<Context> make_verbs_context(const ContextOptions& options);
// Usable when a device is listed, opens, has an active port, and makes a real PD, CQ and QP.
Availability probe_verbs();

}  // namespace imgcast::transport::verbs
