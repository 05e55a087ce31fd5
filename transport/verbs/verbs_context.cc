#include "transport/verbs/verbs_context.h"

#include <fmt/format.h>
#include <numa.h>
#include <poll.h>
#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "transport/addr_info.h"
#include "transport/error.h"
#include "transport/host_port.h"
#include "transport/log.h"
#include "transport/verbs/verbs_endpoint.h"
#include "transport/verbs/verbs_listener.h"
#include "transport/verbs/verbs_memory_region.h"

namespace imgcast::transport::verbs {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<long long>(left.count(), 1, INT_MAX));
}

// Waits on a connect's own event channel for `expected`; acks what it reads. Throws Error naming
// `peer` for any other event or at the deadline.
void await_event(rdma_event_channel* channel, rdma_cm_event_type expected,
                 Clock::time_point deadline, const std::string& peer) {
  pollfd waiter{channel->fd, POLLIN, 0};
  int ready = 0;
  do {
    ready = ::poll(&waiter, 1, remaining_ms(deadline));
  } while (ready < 0 && errno == EINTR && Clock::now() < deadline);
  if (ready <= 0)
    throw Error(StatusCode::kTimeout, fmt::format("connecting to {} timed out", peer));
  rdma_cm_event* event = nullptr;
  if (rdma_get_cm_event(channel, &event) != 0)
    throw Error(StatusCode::kIoError, describe_errno("rdma_get_cm_event", errno));
  const rdma_cm_event_type type = event->event;
  const int status = event->status;
  rdma_ack_cm_event(event);
  if (type != expected) {
    // Address and route errors carry a negative errno; ENODEV/EADDRNOTAVAIL mostly mean the
    // address is not on an RDMA network (a management Ethernet name instead of IPoIB/RoCE).
    const std::string why = status < 0 ? std::strerror(-status) : fmt::format("status {}", status);
    const bool address = type == RDMA_CM_EVENT_ADDR_ERROR || type == RDMA_CM_EVENT_ROUTE_ERROR;
    throw Error(
        StatusCode::kClosed,
        fmt::format("cannot reach {}: {} ({}){}", peer, rdma_event_str(type), why,
                    address ? "; is it an address of the RDMA network (IPoIB or RoCE)?" : ""));
  }
}

class VerbsContext final : public Context {
 public:
  explicit VerbsContext(std::shared_ptr<VerbsCore> core) : core_(std::move(core)) {}
  ~VerbsContext() override {
    // Connections the core still holds (not yet handed out) hold the core: break the cycle.
    for (const VerbsCore::ConnectRequest& request : core_->connect_requests) {
      (void)rdma_reject(request.id, nullptr, 0);
      CmIdDeleter{}(request.id);
    }
    core_->connect_requests.clear();
    core_->accepting.clear();
    core_->graveyard.clear();
    // A PeerAccepted never handed out owns an endpoint too. Moved out first: the endpoint's
    // destructor erases its completions from core_->queue.
    std::vector<Completion> undelivered;
    core_->queue.take_all(undelivered);
    undelivered.clear();
  }

  Kind kind() const noexcept override { return Kind::kVerbs; }

  std::unique_ptr<MemoryRegion> register_memory(std::span<std::byte> memory, Access access,
                                                int file = -1) override {
    (void)file;  // the HCA writes into the registered pages
    return std::make_unique<VerbsMemoryRegion>(core_, memory, access, next_region_id_++);
  }

  std::unique_ptr<Listener> listen(const ListenOptions& options) override {
    return std::make_unique<VerbsListener>(core_, options);
  }

  // Resolves address and route here (local work, bounded by the timeout), then connects in the
  // background: the peer accepts only when its owner polls, and that may be this very thread.
  // A peer that refuses or never answers shows as PeerFailed from a later poll().
  std::unique_ptr<Endpoint> connect(std::span<const std::byte> address,
                                    std::chrono::milliseconds timeout) override {
    const HostPort target = HostPort::parse_address(address, "verbs");
    const std::string name = target.to_string();
    const AddrInfo info = resolve(target.host, target.port, false);
    const Clock::time_point deadline = Clock::now() + timeout;
    // The connect's own channel, so that waiting here reads no other connection's events.
    const EventChannelHandle channel(rdma_create_event_channel());
    if (!channel)
      throw Error(StatusCode::kIoError, describe_errno("rdma_create_event_channel", errno));
    rdma_cm_id* raw = nullptr;
    if (rdma_create_id(channel.get(), &raw, nullptr, RDMA_PS_TCP) != 0)
      throw Error(StatusCode::kIoError, describe_errno("rdma_create_id", errno));
    CmIdHandle id(raw);
    if (rdma_resolve_addr(id.get(), nullptr, info->ai_addr, remaining_ms(deadline)) != 0) {
      throw Error(StatusCode::kClosed, describe_errno("rdma_resolve_addr", errno) + " for " + name);
    }
    await_event(channel.get(), RDMA_CM_EVENT_ADDR_RESOLVED, deadline, name);
    if (rdma_resolve_route(id.get(), remaining_ms(deadline)) != 0) {
      throw Error(StatusCode::kClosed,
                  describe_errno("rdma_resolve_route", errno) + " for " + name);
    }
    await_event(channel.get(), RDMA_CM_EVENT_ROUTE_RESOLVED, deadline, name);
    // From here on its events go where poll() reads them. Every event so far is acked.
    if (rdma_migrate_id(id.get(), core_->cm_events.get()) != 0)
      throw Error(StatusCode::kIoError, describe_errno("rdma_migrate_id", errno));
    auto endpoint = std::make_unique<VerbsEndpoint>(core_, std::move(id), name);
    endpoint->start_connecting(deadline);
    const auto mine = endpoint->local_params().encode();
    rdma_conn_param param = connection_param(mine);
    // Transport retries before IBV_WC_RETRY_EXC_ERR: the active side's alone (rdma_accept ignores
    // it), so connection_param leaves it out.
    param.retry_count = 7;
    if (rdma_connect(endpoint->id(), &param) != 0) {
      throw Error(StatusCode::kClosed, describe_errno("rdma_connect", errno) + " to " + name);
    }
    return endpoint;
  }

  Status poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override {
    core_->queue.set_in_poll(true);
    bool waited = false;
    Status result;
    for (;;) {
      progress();
      if (!core_->queue.empty() || waited || timeout.count() == 0)
        break;
      if (spin_budget_.count() > 0 && spin(std::min<Clock::duration>(spin_budget_, timeout)))
        break;
      // Everything is drained and every CQ is armed: sleep until the NIC, the CM or a
      // completion queued outside poll() wakes us. Never a spin.
      std::array<epoll_event, 4> events;
      const int n = ::epoll_wait(core_->epoll.get(), events.data(), events.size(),
                                 static_cast<int>(std::min<long long>(timeout.count(), INT_MAX)));
      if (n < 0 && errno != EINTR) {
        result = {StatusCode::kIoError, describe_errno("epoll_wait", errno)};
        break;
      }
      waited = true;
    }
    core_->queue.drain_wakeup();
    core_->queue.set_in_poll(false);
    core_->queue.take_all(out);
    return result;
  }

  int wait_fd() const noexcept override { return core_->epoll.get(); }

 private:
  void progress() {
    handle_cm_events();
    // Re-arm each CQ that signalled before draining it: a CQE that lands after the drain then
    // raises a new event, one that lands before is drained. Acked at once, since
    // ibv_destroy_cq waits for every event of its CQ to be acked.
    ibv_cq* cq = nullptr;
    void* context = nullptr;
    while (ibv_get_cq_event(core_->completions.get(), &cq, &context) == 0) {
      ibv_ack_cq_events(cq, 1);
      (void)ibv_req_notify_cq(cq, 0);
    }
    const auto now = Clock::now();
    const std::vector<VerbsEndpoint*> endpoints = core_->endpoints;
    for (VerbsEndpoint* endpoint : endpoints) {
      endpoint->check_deadline(now);
      endpoint->progress();
    }
  }

  // The optional poll budget (IMGCAST_RDMA_POLL_US): progress without sleeping for at most
  // `budget`, which saves the wake-up latency of the completion channel when the next
  // completion is microseconds away. Bounded, so never an endless spin. True if work turned up.
  bool spin(Clock::duration budget) {
    const Clock::time_point until = Clock::now() + budget;
    while (Clock::now() < until) {
      progress();
      if (!core_->queue.empty())
        return true;
    }
    return false;
  }

  static std::chrono::microseconds spin_budget_from_environment() {
    const char* text = std::getenv("IMGCAST_RDMA_POLL_US");
    const long long us = text == nullptr ? 0 : std::strtoll(text, nullptr, 10);
    return std::chrono::microseconds(std::clamp<long long>(us, 0, 10'000));
  }

  void handle_cm_events() {
    rdma_cm_event* event = nullptr;
    while (rdma_get_cm_event(core_->cm_events.get(), &event) == 0) {
      if (auto* handler = static_cast<CmHandler*>(event->id->context); handler != nullptr)
        handler->on_cm_event(*event);
      rdma_ack_cm_event(event);
    }
    // Only now, with every event acked, may ids be destroyed.
    core_->graveyard.clear();
    std::vector<VerbsCore::ConnectRequest> requests;
    requests.swap(core_->connect_requests);
    for (auto& request : requests)
      request.listener->accept(std::move(request));
  }

  std::shared_ptr<VerbsCore> core_;
  std::uint32_t next_region_id_ = 1;
  std::chrono::microseconds spin_budget_ = spin_budget_from_environment();
};

// The thread that makes the Context owns it and runs its progress (context.h): move it next to
// the NIC, where its buffers are too, unless told not to.
void bind_to_device_node(const DeviceInfo& info) {
  const char* bind = std::getenv("IMGCAST_RDMA_NUMA_BIND");
  if (info.numa_node < 0 || (bind != nullptr && std::strcmp(bind, "0") == 0) ||
      numa_available() < 0) {
    return;
  }
  if (numa_run_on_node(info.numa_node) != 0) {
    log().warn("verbs: cannot run on NUMA node {}: {}", info.numa_node, std::strerror(errno));
    return;
  }
  log().debug("verbs: progress thread bound to NUMA node {}", info.numa_node);
}

}  // namespace

std::unique_ptr<Context> make_verbs_context(const ContextOptions& options) {
  auto core = open_core(options, device_spec_from_environment());
  log().info("verbs: using {}", core->info.describe());
  bind_to_device_node(core->info);
  return std::make_unique<VerbsContext>(std::move(core));
}

}  // namespace imgcast::transport::verbs
