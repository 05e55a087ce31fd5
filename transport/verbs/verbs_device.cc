// Opening the device: which one (IMGCAST_RDMA_DEVICE or the first with an active port), what it
// can do, and the PD, channels and epoll set every Context needs. Also the probe, which goes
// as far as creating a real QP: a device that lists but cannot make one is not usable.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/epoll.h>

#include <cerrno>
#include <optional>
#include <string>

#include "transport/error.h"
#include "transport/log.h"
#include "transport/verbs/verbs_context.h"
#include "transport/verbs/verbs_core.h"

namespace imgcast::transport::verbs {

namespace {

[[noreturn]] void unavailable(std::string reason) {
  throw Error(StatusCode::kUnavailable, std::move(reason));
}

void set_nonblocking(int fd, const char* what) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    unavailable(describe_errno(what, errno));
}

// The first active port of `device` (or `wanted` when it is active); 0 when none is.
std::uint8_t active_port(ibv_context* device, std::uint8_t wanted, std::uint8_t port_count,
                         std::uint32_t& max_msg_bytes) {
  for (std::uint8_t port = 1; port <= port_count; ++port) {
    if (wanted != 0 && port != wanted)
      continue;
    ibv_port_attr attr{};
    if (ibv_query_port(device, port, &attr) == 0 && attr.state == IBV_PORT_ACTIVE) {
      max_msg_bytes = attr.max_msg_sz;
      return port;
    }
  }
  return 0;
}

// Why there is no device at all, in the words probe() and make_context() both use.
std::optional<std::string> missing_device() {
  int count = 0;
  ibv_device** list = ibv_get_device_list(&count);
  if (list == nullptr) {
    // ENOSYS: the kernel has no uverbs at all (no RDMA driver, no Soft-RoCE module).
    return fmt::format("no RDMA device (ibv_get_device_list found none: {})", std::strerror(errno));
  }
  ibv_free_device_list(list);
  if (count == 0)
    return "no RDMA device (ibv_get_device_list found none)";
  return std::nullopt;
}

void choose_device(VerbsCore& core, const DeviceSpec& spec) {
  if (std::optional<std::string> reason = missing_device())
    unavailable(std::move(*reason));
  int count = 0;
  core.devices.reset(rdma_get_devices(&count));
  if (!core.devices || count == 0) {
    // Listed by libibverbs, yet librdmacm has none: no rdma_cm support (ib_ucm/rdma_ucm).
    unavailable(describe_errno("rdma_get_devices", errno) +
                ": the RDMA devices have no "
                "rdma_cm support (is the rdma_ucm module loaded?)");
  }
  std::string seen;
  for (int i = 0; i < count; ++i) {
    ibv_context* device = core.devices.get()[i];
    const std::string name = ibv_get_device_name(device->device);
    seen += (seen.empty() ? "" : ", ") + name;
    if (!spec.device.empty() && name != spec.device)
      continue;
    ibv_device_attr attr{};
    if (const int error = ibv_query_device(device, &attr); error != 0) {
      log().warn("verbs: skipping {}: {}", name, describe_errno("ibv_query_device", error));
      continue;
    }
    std::uint32_t max_msg = 0;
    const std::uint8_t port = active_port(device, spec.port, attr.phys_port_cnt, max_msg);
    if (port == 0) {
      if (!spec.device.empty()) {
        unavailable(fmt::format("RDMA device {} has no active port{} (see ibv_devinfo)",
                                spec.to_string(), spec.port != 0 ? " of that number" : ""));
      }
      continue;
    }
    core.device = device;
    core.info.name = name;
    core.info.port = port;
    core.info.port_pinned = spec.port != 0;
    core.info.max_qp_wr = static_cast<std::uint32_t>(attr.max_qp_wr);
    core.info.max_msg_bytes = max_msg != 0 ? max_msg : (1u << 30);
    core.info.max_mr_bytes = attr.max_mr_size;
    ibv_device_attr_ex ex{};
    if (ibv_query_device_ex(device, nullptr, &ex) == 0) {
      core.info.odp_rc_write =
          (ex.odp_caps.general_caps & IBV_ODP_SUPPORT) != 0 &&
          (ex.odp_caps.per_transport_caps.rc_odp_caps & IBV_ODP_SUPPORT_WRITE) != 0;
    }
    core.info.numa_node = device_numa_node(name);
    return;
  }
  if (!spec.device.empty()) {
    unavailable(fmt::format("RDMA device {} not found (have: {}); check {}", spec.to_string(), seen,
                            kDeviceEnvironmentVariable));
  }
  unavailable(fmt::format("no RDMA device has an active port (have: {})", seen));
}

}  // namespace

std::shared_ptr<VerbsCore> open_core(const ContextOptions& options, const DeviceSpec& spec) {
  auto core = std::make_shared<VerbsCore>();
  core->options = options;
  choose_device(*core, spec);
  core->pd.reset(ibv_alloc_pd(core->device));
  if (!core->pd)
    unavailable(describe_errno("ibv_alloc_pd", errno) + " on " + core->info.name);
  core->completions.reset(ibv_create_comp_channel(core->device));
  if (!core->completions)
    unavailable(describe_errno("ibv_create_comp_channel", errno));
  core->cm_events.reset(rdma_create_event_channel());
  if (!core->cm_events)
    unavailable(describe_errno("rdma_create_event_channel", errno));
  // Both are read only after epoll said so, and drained until EAGAIN: never a blocking read.
  set_nonblocking(core->completions->fd, "fcntl(completion channel)");
  set_nonblocking(core->cm_events->fd, "fcntl(rdma_cm channel)");
  core->epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
  const bool have_wakeup = core->queue.open_wakeup();
  if (!core->epoll.valid() || !have_wakeup)
    unavailable(describe_errno("epoll_create1/eventfd", errno));
  for (const int fd : {core->completions->fd, core->cm_events->fd, core->queue.wakeup_fd()}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (::epoll_ctl(core->epoll.get(), EPOLL_CTL_ADD, fd, &event) != 0)
      unavailable(describe_errno("epoll_ctl", errno));
  }
  return core;
}

Availability probe_verbs() {
  if (std::optional<std::string> reason = missing_device())
    return {false, std::move(*reason)};
  try {
    const auto core = open_core({}, device_spec_from_environment());
    // A real CQ and RC QP: some devices list, open and allocate a PD, yet cannot make a QP
    // (no free resources, a driver without user-space support).
    const CqHandle cq(ibv_create_cq(core->device, 4, nullptr, nullptr, 0));
    if (!cq)
      return {false, describe_errno("ibv_create_cq", errno) + " on " + core->info.name};
    ibv_qp_init_attr attr{};
    attr.send_cq = cq.get();
    attr.recv_cq = cq.get();
    attr.qp_type = IBV_QPT_RC;
    attr.cap.max_send_wr = 1;
    attr.cap.max_recv_wr = 1;
    attr.cap.max_send_sge = 1;
    attr.cap.max_recv_sge = 1;
    const QpHandle qp(ibv_create_qp(core->pd.get(), &attr));
    if (!qp)
      return {false, describe_errno("ibv_create_qp", errno) + " on " + core->info.name};
    return {true, "verbs on " + core->info.describe()};
  } catch (const Error& error) {
    return {false, error.what()};
  }
}

}  // namespace imgcast::transport::verbs
