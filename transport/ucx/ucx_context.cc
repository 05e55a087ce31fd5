#include "transport/ucx/ucx_context.h"

#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/prctl.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "transport/addr_info.h"
#include "transport/error.h"
#include "transport/host_port.h"
#include "transport/log.h"
#include "transport/ucx/ucx_endpoint.h"
#include "transport/ucx/ucx_listener.h"
#include "transport/ucx/ucx_memory_region.h"
#include "transport/ucx/ucx_tls.h"

namespace imgcast::transport::ucx {

namespace {

// UCX_TCP_{TX,RX}_SEG_SIZE unless the user sets them: twice the automatic chunk size for fast
// links (512 KiB), so one put and its header leave in one segment.
constexpr const char* kTcpSegmentDefault = "1M";

// Active message handlers: the sender sets UCP_AM_SEND_FLAG_REPLY, so UCX tells us its endpoint.
template <bool kNotice>
ucs_status_t on_active_message(void* arg, const void* header, std::size_t header_length, void* data,
                               std::size_t length, const ucp_am_recv_param_t* param) {
  auto* core = static_cast<UcxCore*>(arg);
  if ((param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP) == 0) {
    return UCS_OK;  // nobody to attribute it to
  }
  const auto it = core->endpoints.find(param->reply_ep);
  if (it == core->endpoints.end()) {
    return UCS_OK;
  }
  if ((param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0) {
    // Every sender uses eager sends; a rendezvous here is a peer that does not follow the rules.
    it->second->fail({StatusCode::kProtocolError,
                      fmt::format("{} sent a rendezvous active message", it->second->peer_name())});
    return UCS_OK;
  }
  if constexpr (kNotice) {
    it->second->on_notice(header, header_length);
  } else {
    it->second->on_control(data, length);
  }
  return UCS_OK;
}

void set_handler(ucp_worker_h worker, unsigned id, ucp_am_recv_callback_t cb, void* arg) {
  ucp_am_handler_param_t param{};
  param.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                     UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
  param.id = id;
  param.cb = cb;
  param.arg = arg;
  param.flags = UCP_AM_FLAG_WHOLE_MSG;
  if (const ucs_status_t s = ucp_worker_set_am_recv_handler(worker, &param); s != UCS_OK) {
    throw Error(StatusCode::kIoError, describe("ucp_worker_set_am_recv_handler", s));
  }
}

void apply_tcp_segment_default(ucp_config_t* config) {
  // UCX's TCP transport moves a put as copies through its own buffers of UCX_TCP_TX_SEG_SIZE
  // (8 KiB by default) and receives them UCX_TCP_RX_SEG_SIZE (64 KiB) at a time: a 512 KiB
  // chunk costs 64 sends and 8 receives, each through the whole network stack. 512 KiB
  // segments made imgcast over UCX 2.2x faster on 2 namespace hosts, 1 MiB another ~1.2x
  // (docs/perf.md, UCX); a node's anonymous RSS stays a few MiB.
  // A user who sets either variable keeps full control (TX must not exceed RX, so we never set
  // one beside theirs).
  if (std::getenv("UCX_TCP_TX_SEG_SIZE") != nullptr ||
      std::getenv("UCX_TCP_RX_SEG_SIZE") != nullptr) {
    return;
  }
  // ucp_config_modify keeps names it does not know for the transports' own tables, matched
  // without their prefix: UCX 1.13 ignores "TCP_TX_SEG_SIZE", and only the tcp transport has
  // fields named TX_SEG_SIZE / RX_SEG_SIZE (the others' are SEG_SIZE).
  for (const char* name : {"RX_SEG_SIZE", "TX_SEG_SIZE"}) {
    if (const ucs_status_t s = ucp_config_modify(config, name, kTcpSegmentDefault); s != UCS_OK) {
      log().debug("UCX does not take {}={}: {}", name, kTcpSegmentDefault, ucs_status_string(s));
      return;
    }
  }
}

std::shared_ptr<UcxCore> make_core(const ContextOptions& options) {
  // Refused here, once, in one line: UCX would only fail each endpoint later, as "Destination
  // is unreachable", and the replicator would re-parent round and round (ucx_tls.h).
  const TlsCheck tls = check_tls(std::getenv("UCX_TLS"), has_rdma_device());
  if (!tls.problem.empty()) {
    throw Error(StatusCode::kUnavailable, tls.problem);
  }
  // imgcast keeps its processes non-dumpable while they hold the job key (cli/key_hygiene.h),
  // but UCX's shared-memory transports reach a peer process through process_vm_writev (cma)
  // and /proc/PID/fd (posix), which the kernel allows a same-uid peer only on a dumpable
  // process. The core limit stays 0; docs/security.md says what this gives up.
  (void)::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);  // fails only for an invalid argument
  auto core = std::make_shared<UcxCore>();
  core->options = options;
  ucp_config_t* raw_config = nullptr;
  if (const ucs_status_t s = ucp_config_read(nullptr, nullptr, &raw_config); s != UCS_OK) {
    throw Error(StatusCode::kUnavailable, describe("ucp_config_read", s));
  }
  const ConfigHandle config(raw_config);
  if (tls.tcp) {
    // Without tcp in the set UCX warns about "invalid configurations" for the segment sizes.
    apply_tcp_segment_default(config.get());
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = UCP_FEATURE_RMA | UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
  ucp_context_h context = nullptr;
  if (const ucs_status_t s = ucp_init(&params, config.get(), &context); s != UCS_OK) {
    throw Error(StatusCode::kUnavailable, describe("ucp_init", s));
  }
  core->context.reset(context);
  ucp_worker_params_t worker_params{};
  worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE | UCP_WORKER_PARAM_FIELD_EVENTS;
  worker_params.thread_mode = UCS_THREAD_MODE_SINGLE;  // one thread owns the Context
  worker_params.events = UCP_WAKEUP_RMA | UCP_WAKEUP_TX | UCP_WAKEUP_RX;
  ucp_worker_h worker = nullptr;
  if (const ucs_status_t s = ucp_worker_create(context, &worker_params, &worker); s != UCS_OK) {
    throw Error(StatusCode::kUnavailable, describe("ucp_worker_create", s));
  }
  core->worker.reset(worker);
  set_handler(worker, kControlMessage, on_active_message<false>, core.get());
  set_handler(worker, kWriteNotice, on_active_message<true>, core.get());

  int worker_fd = -1;
  if (const ucs_status_t s = ucp_worker_get_efd(worker, &worker_fd); s != UCS_OK) {
    throw Error(StatusCode::kUnavailable, describe("ucp_worker_get_efd", s));
  }
  core->epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
  // A refused eventfd leaves wakeup_fd() at -1, which epoll_ctl below refuses in turn.
  (void)core->queue.open_wakeup();
  for (int fd : {worker_fd, core->queue.wakeup_fd()}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (!core->epoll.valid() || ::epoll_ctl(core->epoll.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
      throw Error(StatusCode::kIoError,
                  fmt::format("cannot build the UCX wait set: {}", std::strerror(errno)));
    }
  }
  return core;
}

class UcxContext final : public Context {
 public:
  explicit UcxContext(const ContextOptions& options) : core_(make_core(options)) {}

  Kind kind() const noexcept override { return Kind::kUcx; }

  std::unique_ptr<MemoryRegion> register_memory(std::span<std::byte> memory, Access access,
                                                int file = -1) override {
    (void)file;  // UCX writes through the mapping (CMA, RDMA)
    return std::make_unique<UcxMemoryRegion>(core_, memory, access, next_region_id_++);
  }

  std::unique_ptr<Listener> listen(const ListenOptions& options) override {
    return std::make_unique<UcxListener>(core_, options);
  }

  std::unique_ptr<Endpoint> connect(std::span<const std::byte> address,
                                    std::chrono::milliseconds timeout) override {
    const HostPort target = HostPort::parse_address(address, "UCX");
    const std::string name = target.to_string();
    const AddrInfo info = resolve(target.host, target.port, false);
    auto endpoint = std::make_unique<UcxEndpoint>(core_, name);
    ucp_ep_params_t params{};
    params.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR;
    params.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
    params.sockaddr.addr = info->ai_addr;
    params.sockaddr.addrlen = info->ai_addrlen;
    endpoint->open(params);
    // UCX connects in the background, and only while both workers progress: waiting here could
    // deadlock a peer that shares this thread. A peer that is not there shows as PeerFailed.
    (void)timeout;
    return endpoint;
  }

  Status poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override {
    // Returns with the worker armed, so a caller that then blocks on wait_fd() wakes for the
    // next event; ucp_worker_arm answers BUSY while there is still progress to make.
    core_->queue.set_in_poll(true);
    bool waited = false;
    Status result;
    for (;;) {
      core_->progress_all();
      const ucs_status_t armed = ucp_worker_arm(core_->worker.get());
      if (armed == UCS_ERR_BUSY)
        continue;
      if (armed != UCS_OK) {
        result = {StatusCode::kIoError, describe("ucp_worker_arm", armed)};
        break;
      }
      if (!core_->queue.empty() || waited || timeout.count() == 0)
        break;
      std::array<epoll_event, 2> events;
      const int n = ::epoll_wait(core_->epoll.get(), events.data(), events.size(),
                                 static_cast<int>(timeout.count()));
      if (n < 0 && errno != EINTR) {
        result = {StatusCode::kIoError, fmt::format("epoll_wait failed: {}", std::strerror(errno))};
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
  std::shared_ptr<UcxCore> core_;
  std::uint32_t next_region_id_ = 1;
};

}  // namespace

bool has_rdma_device() {
  std::error_code ignored;
  const std::filesystem::path devices = "/sys/class/infiniband";
  return std::filesystem::exists(devices, ignored) && !std::filesystem::is_empty(devices, ignored);
}

std::unique_ptr<Context> make_ucx_context(const ContextOptions& options) {
  return std::make_unique<UcxContext>(options);
}

Availability probe_ucx(bool& rdma_capable) {
  rdma_capable = false;
  try {
    (void)make_core({});
  } catch (const Error& error) {
    return {false, error.what()};
  }
  // UCX moves data by RDMA only over an RDMA device; without one it runs over its tcp transport
  // (UCX 1.13 gives imgcast's endpoints no shared-memory lane even on one host: docs/rdma.md),
  // with a copy on each side that the native TCP backend does not make.
  rdma_capable = has_rdma_device();
  return {true, rdma_capable ? "UCX with an RDMA device" : "UCX over tcp/shared memory"};
}

}  // namespace imgcast::transport::ucx
