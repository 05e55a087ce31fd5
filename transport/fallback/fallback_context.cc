#include "transport/fallback/fallback_context.h"

#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <cerrno>
#include <cstring>

#include "transport/error.h"
#include "transport/fallback/fallback_endpoint.h"
#include "transport/fallback/fallback_listener.h"
#include "transport/fallback/fallback_region.h"
#include "transport/fallback/two_halves.h"
#include "transport/log.h"

namespace imgcast::transport::fallback {

namespace {

void watch(int epoll, int fd, const char* what) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd;
  if (::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0) {
    throw Error(StatusCode::kIoError,
                fmt::format("cannot watch the {} fd: {}", what, std::strerror(errno)));
  }
}

}  // namespace

FallbackContext::FallbackContext(std::unique_ptr<Context> rdma, std::unique_ptr<Context> tcp,
                                 const std::string& why_no_rdma,
                                 std::chrono::milliseconds first_contact)
    : rdma_(std::move(rdma)),
      tcp_(std::move(tcp)),
      kind_(rdma_ ? rdma_->kind() : Kind::kTcp),
      rdma_usable_(rdma_ != nullptr),
      first_contact_(first_contact),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      timer_(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {
  if (!epoll_.valid() || !timer_.valid() || !queue_.open_wakeup()) {
    throw Error(StatusCode::kIoError,
                fmt::format("cannot set up the transport fallback: {}", std::strerror(errno)));
  }
  watch(epoll_.get(), tcp_->wait_fd(), "TCP transport");
  if (rdma_) {
    watch(epoll_.get(), rdma_->wait_fd(), "RDMA transport");
  }
  watch(epoll_.get(), queue_.wakeup_fd(), "wake-up");
  watch(epoll_.get(), timer_.get(), "first-contact timer");
  if (!rdma_) {
    log().warn("transport auto: RDMA is not usable on this node ({}); its links run on TCP",
               why_no_rdma);
  }
}

FallbackContext::~FallbackContext() {
  // Everything this context made must be gone already (context.h). What is left here goes while
  // the maps it unlinks itself from still exist: accepted links never handed out (queue_ is
  // declared before the maps, so it would outlive them) and retired RDMA endpoints.
  std::vector<Completion> unclaimed;
  queue_.take_all(unclaimed);
  unclaimed.clear();
  retired_.clear();
  if (const std::size_t held = link_log_.take_all(); held > 0) {
    log().warn("transport auto: {} more links moved to TCP", held);
  }
}

std::unique_ptr<MemoryRegion> FallbackContext::register_memory(std::span<std::byte> memory,
                                                               Access access, int file) {
  auto tcp = tcp_->register_memory(memory, access, file);
  std::unique_ptr<MemoryRegion> rdma;
  if (rdma_usable_) {
    try {
      rdma = rdma_->register_memory(memory, access);
    } catch (const Error& error) {
      // Without its registration no link of this node could move these bytes over RDMA.
      give_up_rdma(
          fmt::format("cannot register memory with {}: {}", to_string(kind_), error.what()));
    }
  }
  return std::make_unique<FallbackRegion>(std::move(rdma), std::move(tcp), kind_);
}

std::unique_ptr<Listener> FallbackContext::listen(const ListenOptions& options) {
  auto tcp = tcp_->listen(options);
  std::unique_ptr<Listener> rdma;
  if (rdma_usable_) {
    // The port asked for (and any port forward) belongs to TCP, the one every peer can use;
    // the RDMA listener takes any free port (UCX's connection manager uses TCP ports too).
    ListenOptions rdma_options = options;
    rdma_options.port = 0;
    rdma_options.advertise_port = 0;
    try {
      rdma = rdma_->listen(rdma_options);
    } catch (const Error& error) {
      // An RDMA device need not sit on the interface of the host's name: every address then,
      // as the replicator's listen_on does for a backend alone.
      std::string why = error.what();
      if (rdma_options.bind_host != "0.0.0.0") {
        rdma_options.bind_host = "0.0.0.0";
        try {
          rdma = rdma_->listen(rdma_options);
          log().info("transport auto: {} listens on every address ({} on {})", to_string(kind_),
                     why, options.bind_host);
        } catch (const Error& again) {
          why = again.what();
        }
      }
      if (!rdma) {
        // Logged once per process: a node listens once per run.
        log().warn("transport auto: cannot listen with {} ({}): peers reach this node over TCP",
                   to_string(kind_), why);
      }
    }
  }
  return std::make_unique<FallbackListener>(*this, std::move(rdma), std::move(tcp));
}

std::unique_ptr<Endpoint> FallbackContext::connect(std::span<const std::byte> address,
                                                   std::chrono::milliseconds timeout) {
  const std::optional<TwoHalves> halves = unpack(address);
  if (!halves) {
    throw Error(StatusCode::kInvalidArgument,
                "malformed peer address (not a --transport auto address)");
  }
  if (rdma_usable_ && !halves->rdma.empty()) {
    const auto patience = std::min(timeout, first_contact_);
    try {
      auto link = std::make_unique<FallbackEndpoint>(*this, rdma_->connect(halves->rdma, patience));
      FallbackEndpoint::Probation probation;
      probation.tcp_address = halves->tcp;
      probation.connect_timeout = timeout;
      probation.deadline = std::chrono::steady_clock::now() + patience;
      link->start_probation(std::move(probation));
      arm_timer();
      return link;
    } catch (const Error& error) {
      log_link_fallback("a peer", error.what());
    }
  }
  return std::make_unique<FallbackEndpoint>(*this, tcp_->connect(halves->tcp, timeout));
}

void FallbackContext::link(const Endpoint* inner, FallbackEndpoint* outer) {
  if (inner != nullptr)
    links_[inner] = outer;
}

void FallbackContext::unlink(const Endpoint* inner, const FallbackEndpoint* outer) noexcept {
  if (inner != nullptr) {
    const auto it = links_.find(inner);
    if (it != links_.end() && it->second == outer)
      links_.erase(it);
  }
}

void FallbackContext::forget(const FallbackEndpoint* outer) noexcept { queue_.forget(outer); }

void FallbackContext::link(const Listener* inner, FallbackListener* outer) {
  if (inner != nullptr)
    listeners_[inner] = outer;
}

void FallbackContext::unlink(const Listener* inner, const FallbackListener* outer) noexcept {
  const auto it = listeners_.find(inner);
  if (inner != nullptr && it != listeners_.end() && it->second == outer)
    listeners_.erase(it);
}

void FallbackContext::give_up_rdma(const std::string& reason) {
  if (!rdma_usable_)
    return;
  rdma_usable_ = false;
  log().warn("transport auto: {}; this node's links run on TCP", reason);
}

void FallbackContext::log_link_fallback(const std::string& peer, const std::string& reason) {
  const auto now = LogRateLimit::Clock::now();
  if (const std::size_t held = link_log_.take_suppressed(now); held > 0) {
    log().warn("transport auto: {} more links moved to TCP", held);
  }
  if (link_log_.allow(now)) {
    log().warn("transport auto: {} setup to {} failed ({}): this link runs on TCP",
               to_string(kind_), peer, reason);
  }
}

std::unique_ptr<Context> make_fallback_context(std::unique_ptr<Context> rdma,
                                               std::unique_ptr<Context> tcp,
                                               const std::string& why_no_rdma) {
  return std::make_unique<FallbackContext>(std::move(rdma), std::move(tcp), why_no_rdma);
}

}  // namespace imgcast::transport::fallback
