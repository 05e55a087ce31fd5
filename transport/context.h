// Context: one backend instance per process (TCP: an epoll set; UCX: a ucp context + worker;
// verbs: a device, PD and CQ). Creates regions, listeners and endpoints, and reports their events
// through poll(). Created by make_context (factory.h). One thread owns it and alone calls every
// method; nothing completes inline. It must outlive everything it created.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "transport/completion.h"
#include "transport/endpoint.h"
#include "transport/kind.h"
#include "transport/memory_region.h"

namespace imgcast::transport {

struct ContextOptions {
  // Writes an endpoint accepts before post_write answers kBusy.
  std::size_t max_writes_in_flight = 64;
  // A peer whose host answers nothing for about this long (powered off, its link cut: no FIN or
  // RST ever comes) is reported as PeerFailed. TCP: keepalive probes while the connection is
  // idle and TCP_USER_TIMEOUT while sent data waits for its acknowledgement. Zero: the kernel's
  // defaults (hours). Meant for control connections, whose peers may stay quiet for long.
  std::chrono::milliseconds dead_peer_after{0};
  // --transport auto: an RDMA kind is wrapped with a TCP context, and a link whose RDMA setup or
  // first contact fails runs on TCP instead (transport/fallback). Ignored for Kind::kTcp.
  bool tcp_fallback = false;
};

struct ListenOptions {
  std::string bind_host = "0.0.0.0";  // where to listen
  std::string advertise_host;         // how peers reach us; empty: bind_host
  std::uint16_t port = 0;             // 0: ephemeral
  std::uint16_t advertise_port = 0;   // how peers reach us behind a port forward; 0: the bound one
};

class Context {
 public:
  virtual ~Context() = default;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  virtual Kind kind() const noexcept = 0;

  // Registers memory the caller keeps alive. Throws Error (e.g. the memory lock limit).
  // `file`, when not -1, is the file the memory maps (MAP_SHARED, from its offset 0), kept open
  // as long as the region: a backend may land writes through the file instead of the mapping
  // (TCP splices them from the socket: the file's pages then need no zeroing and no page-table
  // entries). The bytes show through the mapping either way; RDMA backends ignore it.
  virtual std::unique_ptr<MemoryRegion> register_memory(std::span<std::byte> memory, Access access,
                                                        int file = -1) = 0;
  // Throws Error when it cannot listen.
  virtual std::unique_ptr<Listener> listen(const ListenOptions& options) = 0;
  // Connects to a Listener::address() within the timeout. Throws Error naming the address on
  // failure (a refused connection fails at once: nobody listens there) or timeout. A backend
  // whose connections complete in the background (UCX) may instead return at once and report a
  // peer that is not there as PeerFailed from a later poll().
  virtual std::unique_ptr<Endpoint> connect(std::span<const std::byte> address,
                                            std::chrono::milliseconds timeout) = 0;

  // Appends what happened to `out`, blocking up to `timeout` (0: do not block) for the first
  // event. Never spins. Returns an error only when the Context itself is broken.
  virtual Status poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) = 0;

  // A file descriptor that becomes readable when poll() may have work, so one thread can wait on
  // several contexts (and other fds) at once.
  virtual int wait_fd() const noexcept = 0;

 protected:
  Context() = default;
};

}  // namespace imgcast::transport
