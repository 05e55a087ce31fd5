// Completion: what Context::poll() reports. Nothing completes inline: every event of a call
// (a finished write, an arrived chunk, a control message, a new connection, a dead peer) is
// delivered by a later poll() on the Context's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <variant>
#include <vector>

#include "transport/status.h"

namespace imgcast::transport {

class Endpoint;
class Listener;

// The source range of write `cookie` may be reused (TCP: in the kernel; RDMA: acked by the
// NIC). Exactly one per accepted post_write, also when the endpoint fails (status not ok).
struct WriteDone {
  Endpoint* endpoint;
  std::uint64_t cookie;
  Status status;
};

// A peer's write has landed in one of our regions and its bytes are visible. imm and notice are
// the values the writer put in its WriteRequest; the receiver maps imm to a place itself.
struct WriteArrived {
  Endpoint* from;
  std::uint32_t imm;
  std::uint32_t length;
  std::uint64_t notice;
};

// A small, reliable, ordered message (Endpoint::send_control). Ordered after every write the
// same peer posted before it.
struct ControlArrived {
  Endpoint* from;
  std::vector<std::byte> bytes;
};

// A listener accepted a connection. The new endpoint is owned by whoever takes it.
struct PeerAccepted {
  Listener* listener;
  std::unique_ptr<Endpoint> endpoint;
};

// The endpoint failed (peer hung up, I/O error, malformed bytes). Its pending writes have
// completed (or will complete) with errors; nothing more arrives from it.
struct PeerFailed {
  Endpoint* peer;
  Status status;
};

using Completion = std::variant<WriteDone, WriteArrived, ControlArrived, PeerAccepted, PeerFailed>;

// Removes every completion in `queue` that names `endpoint` (being destroyed: no completion may
// outlive it). For backends' queues of completions not yet handed out.
void forget_completions(std::vector<Completion>& queue, const Endpoint* endpoint);

}  // namespace imgcast::transport
