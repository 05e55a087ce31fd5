// VerbsCore: the state one verbs Context shares with its regions, listeners and endpoints (each
// holds a shared_ptr, so the PD and the channels outlive them all): the chosen device and port,
// the protection domain, one completion channel for every endpoint's CQ, the rdma_cm event
// channel, the epoll set behind Context::wait_fd(), and the completions queued for poll().
//
// Threads: one thread owns the Context and alone touches any of this (completion.h).
#pragma once

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include <memory>
#include <string>
#include <vector>

#include "transport/completion_queue.h"
#include "transport/context.h"
#include "transport/unique_fd.h"
#include "transport/verbs/device_spec.h"
#include "transport/verbs/handles.h"
#include "transport/writable_regions.h"

namespace imgcast::transport::verbs {

class VerbsEndpoint;
class VerbsListener;

// What the Context found out about its device when it opened it.
struct DeviceInfo {
  std::string name;             // "mlx5_0"
  std::uint8_t port = 0;        // the active port in use
  bool port_pinned = false;     // the user named the port: connections must use it
  int numa_node = -1;           // -1: unknown
  std::uint32_t max_qp_wr = 0;  // per queue
  std::uint32_t max_msg_bytes = 0;
  std::uint64_t max_mr_bytes = 0;
  bool odp_rc_write = false;     // on-demand paging for RC writes: registration without pinning
  std::string describe() const;  // "mlx5_0 port 1 (NUMA node 0)"
};

// Someone an rdma_cm event can be for: the id's context pointer points at one.
class CmHandler {
 public:
  virtual void on_cm_event(const rdma_cm_event& event) = 0;

 protected:
  ~CmHandler() = default;
};

struct VerbsCore {
  ContextOptions options;
  // Members in creation order; destruction runs in reverse (the PD before the device list).
  DeviceListHandle devices;  // keeps rdma_cm's device contexts open
  ibv_context* device = nullptr;
  DeviceInfo info;
  PdHandle pd;
  CompChannelHandle completions;
  EventChannelHandle cm_events;
  UniqueFd epoll;
  // Its wake-up fd is in the epoll set; poll() drains it on every return.
  CompletionQueue queue;
  std::vector<VerbsEndpoint*> endpoints;  // every live endpoint: whose CQs poll() drains
  WritableRegions writable;  // regions with kRemoteWrite: their grants decide whose notices count
  // Accepted connections not yet established: handed out as PeerAccepted at ESTABLISHED.
  struct Accepting {
    VerbsListener* listener;
    std::unique_ptr<VerbsEndpoint> endpoint;
  };
  std::vector<Accepting> accepting;
  // Connect requests seen by a listener, accepted once their event is acked (the endpoint's
  // set-up may fail, and destroying the new id before the ack would hang).
  struct ConnectRequest {
    VerbsListener* listener;
    rdma_cm_id* id;
    std::vector<std::byte> private_data;
  };
  std::vector<ConnectRequest> connect_requests;
  // Objects to destroy once the rdma_cm event being handled is acked: rdma_destroy_id waits
  // for every event of its id to be acked, so destroying it inside the handler would hang.
  std::vector<std::unique_ptr<VerbsEndpoint>> graveyard;

  VerbsCore();
  ~VerbsCore();  // out of line: VerbsEndpoint is incomplete here
  // ESTABLISHED for an accepted endpoint: queue it as PeerAccepted.
  void on_accept_established(VerbsEndpoint* endpoint);
  // An accepted endpoint failed before it was handed out, or its listener went away.
  void drop_accepting(VerbsEndpoint* endpoint);
  void drop_accepting_of(const VerbsListener* listener);
};

// Opens the device `spec` names (or the first with an active port), its PD, the channels and
// the epoll set. Throws Error (kUnavailable) with a one-line reason.
std::shared_ptr<VerbsCore> open_core(const ContextOptions& options, const DeviceSpec& spec);

// "<what> failed: <strerror(error)>"
std::string describe_errno(const char* what, int error);

}  // namespace imgcast::transport::verbs
