// Endpoint: one connected peer. Created by Context::connect (active side) or delivered in a
// PeerAccepted completion (passive side); owned by the caller; destroying it closes the
// connection and drops its pending completions. Use only from the Context's thread.
//
// An endpoint's first failure is latched: every later call returns it, and every pending write
// completes with it.
//
// An endpoint starts untrusted: until its owner calls trust() (after a handshake proved the
// peer), a control message it receives may be at most kMaxUntrustedControlBytes (a longer one
// fails the endpoint with kProtocolError) and the backend allocates nothing bigger than that for
// it. Trust says nothing about writes: those need MemoryRegion::allow_writer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "transport/kind.h"
#include "transport/memory_region.h"
#include "transport/status.h"

namespace imgcast::transport {

struct WriteRequest {
  const MemoryRegion* source = nullptr;  // registered with kLocalRead on this endpoint's Context
  std::uint64_t source_offset = 0;
  const RemoteRegion* target = nullptr;  // imported on this endpoint
  std::uint64_t target_offset = 0;
  std::uint32_t length = 0;  // > 0
  std::uint32_t imm = 0;     // reaches the target in WriteArrived (the chunk index)
  std::uint64_t notice = 0;  // reaches the target in WriteArrived (the chunk digest)
  std::uint64_t cookie = 0;  // returned in this write's WriteDone
};

class Endpoint {
 public:
  virtual ~Endpoint() = default;
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // One-sided write of source[source_offset, +length) into target[target_offset, +length).
  // Success: accepted; exactly one WriteDone follows. kBusy: the endpoint's queue is full
  // (max_writes_in_flight), retry after a WriteDone. kOutOfRange / kInvalidArgument: the request
  // is wrong and nothing was queued. Any latched failure is returned as is.
  Status post_write(const WriteRequest& request);

  // Sends a small message (at most kMaxControlBytes; longer is kInvalidArgument), reliable and
  // ordered after every write posted before it on this endpoint.
  Status send_control(std::span<const std::byte> message);

  // Imports a peer's region for writing. Throws Error when the descriptor does not fit this
  // backend (wrong kind, key that does not unpack).
  virtual std::unique_ptr<RemoteRegion> import_region(const RegionDescriptor& descriptor) = 0;

  // For logs and errors: the peer's "host:port" or backend-specific name.
  virtual const std::string& peer_name() const noexcept = 0;
  // Which backend carries this connection. Only for reports: under --transport auto one link
  // may run on TCP while its neighbours run on RDMA (transport/fallback).
  virtual Kind kind() const noexcept = 0;

  // A process-wide unique, never reused id (what MemoryRegion::allow_writer records).
  std::uint64_t id() const noexcept { return id_; }
  // The peer proved itself: control messages up to kMaxControlBytes are taken from now on.
  void trust() noexcept {
    trusted_ = true;
    on_trusted();
  }
  bool trusted() const noexcept { return trusted_; }
  // What a receiver takes in one control message: kMaxUntrustedControlBytes until trust().
  std::size_t max_incoming_control_bytes() const noexcept {
    return trusted_ ? kMaxControlBytes : kMaxUntrustedControlBytes;
  }

  // Free for the owner: lets a poll loop map an Endpoint* back to its own record cheaply.
  void set_user_tag(std::uint64_t tag) noexcept { user_tag_ = tag; }
  std::uint64_t user_tag() const noexcept { return user_tag_; }

  static constexpr std::size_t kMaxControlBytes = 1u << 20;
  // Hello, Challenge, Proof and an introduction (Join, Region) fit well within this.
  static constexpr std::size_t kMaxUntrustedControlBytes = 16u << 10;

 protected:
  Endpoint();
  // After trust(): an endpoint that wraps another (transport/fallback) passes the trust on.
  virtual void on_trusted() noexcept {}

 private:
  // REQUIRES: the request passed post_write's range checks.
  virtual Status do_post_write(const WriteRequest& request) = 0;
  // REQUIRES: message.size() <= kMaxControlBytes.
  virtual Status do_send_control(std::span<const std::byte> message) = 0;

  std::uint64_t user_tag_ = 0;
  std::uint64_t id_;
  bool trusted_ = false;
};

// A passive endpoint factory. Connections it accepts arrive as PeerAccepted completions.
class Listener {
 public:
  virtual ~Listener() = default;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // The opaque, bounded (<= kMaxAddressBytes) address a peer passes to Context::connect.
  virtual std::span<const std::byte> address() const noexcept = 0;
  // The same, readable, for logs ("node3:40121").
  virtual std::string name() const = 0;

  static constexpr std::size_t kMaxAddressBytes = 1024;

 protected:
  Listener() = default;
};

}  // namespace imgcast::transport
