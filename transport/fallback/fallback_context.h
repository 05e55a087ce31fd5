// FallbackContext: what --transport auto runs when it chose an RDMA backend. It wraps that
// backend's context (null when it could not even be made here, e.g. no usable UCX transport or
// RLIMIT_MEMLOCK too low) and a TCP context behind one Context:
//   - listen() listens on both and publishes both addresses in one (FallbackListener);
//   - register_memory() registers with both; a descriptor carries both (FallbackRegion);
//   - connect() tries the peer's RDMA address first and, when that setup fails (throws, fails
//     before the peer's first message, or stays silent past the first-contact deadline), moves
//     the link to the peer's TCP address (FallbackEndpoint);
//   - poll() hands out the completions of both, translated to the outer objects, and wait_fd()
//     is one epoll set over both inner fds, its own queue and the first-contact timer.
// Each reason RDMA was given up is logged once: context-wide ones (no context, no listener, no
// registration) once per process, per-link ones rate-limited across links. The replicator sees
// one Context; Endpoint::kind() says which backend a link ended up on.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "transport/completion_queue.h"
#include "transport/context.h"
#include "transport/log_rate_limit.h"
#include "transport/unique_fd.h"

namespace imgcast::transport::fallback {

class FallbackEndpoint;
class FallbackListener;

// How long a link connected over RDMA may wait for the peer's first message before it moves to
// TCP: well above a busy parent's answer to a Hello, well below a connect timeout.
inline constexpr std::chrono::milliseconds kFirstContactTimeout{5000};

class FallbackContext final : public Context {
 public:
  // `rdma` may be null: `why_no_rdma` then says why (logged once here). Throws Error when the
  // epoll set or timer cannot be made.
  FallbackContext(std::unique_ptr<Context> rdma, std::unique_ptr<Context> tcp,
                  const std::string& why_no_rdma,
                  std::chrono::milliseconds first_contact = kFirstContactTimeout);
  ~FallbackContext() override;

  // The RDMA backend's kind while it is there (what the run asked for), else TCP.
  Kind kind() const noexcept override { return kind_; }
  std::unique_ptr<MemoryRegion> register_memory(std::span<std::byte> memory, Access access,
                                                int file = -1) override;
  std::unique_ptr<Listener> listen(const ListenOptions& options) override;
  std::unique_ptr<Endpoint> connect(std::span<const std::byte> address,
                                    std::chrono::milliseconds timeout) override;
  Status poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override;
  int wait_fd() const noexcept override { return epoll_.get(); }

  // For FallbackEndpoint and FallbackListener: which outer object an inner one belongs to
  // (null inner pointers are ignored).
  void link(const Endpoint* inner, FallbackEndpoint* outer);
  void unlink(const Endpoint* inner, const FallbackEndpoint* outer) noexcept;
  // Drops the queued completions that name `outer` (being destroyed).
  void forget(const FallbackEndpoint* outer) noexcept;
  void link(const Listener* inner, FallbackListener* outer);
  void unlink(const Listener* inner, const FallbackListener* outer) noexcept;

 private:
  // fallback_poll.cc
  Status collect(Context& inner);
  void translate(Completion& completion, bool from_rdma);
  void accept(PeerAccepted& accepted, bool from_rdma);
  void move_to_tcp(FallbackEndpoint& link, const std::string& reason);
  void expire_probations(std::chrono::steady_clock::time_point now);
  void arm_timer();

  // Gives RDMA up for this whole node from now on (no RDMA connects, RDMA accepts refused).
  void give_up_rdma(const std::string& reason);
  void log_link_fallback(const std::string& peer, const std::string& reason);

  std::unique_ptr<Context> rdma_;  // null: none here
  std::unique_ptr<Context> tcp_;
  Kind kind_;
  bool rdma_usable_;
  std::chrono::milliseconds first_contact_;
  UniqueFd epoll_;
  UniqueFd timer_;  // timerfd: the earliest first-contact deadline
  CompletionQueue queue_;
  std::unordered_map<const Endpoint*, FallbackEndpoint*> links_;
  std::unordered_map<const Listener*, FallbackListener*> listeners_;
  std::vector<Completion> batch_;                   // one inner poll's output
  std::vector<std::unique_ptr<Endpoint>> retired_;  // left RDMA endpoints, freed after a batch
  LogRateLimit link_log_{5, std::chrono::seconds(10)};
};

// The factory's entry point (factory.cc): `rdma` null with `why_no_rdma` when it failed.
std::unique_ptr<Context> make_fallback_context(std::unique_ptr<Context> rdma,
                                               std::unique_ptr<Context> tcp,
                                               const std::string& why_no_rdma);

}  // namespace imgcast::transport::fallback
