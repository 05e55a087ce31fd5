// MemoryRegion: local memory registered with a Context so peers may write into it (a receiver's
// staging file mapping) or so it may be the source of writes (any sender). Created by
// Context::register_memory; deregisters on destruction. Owned by the caller, which must keep the
// memory itself alive for the region's lifetime. Not thread-safe: use from the Context's thread.
//
// Write authority: knowing a region's descriptor (id and key) is not enough to write into it. A
// region registered for kRemoteWrite accepts writes only from the endpoints its owner granted
// with allow_writer(), named by Endpoint::id() (never reused in a process, unlike an address).
// The TCP backend refuses a write frame from any other endpoint before a byte lands. UCX and
// verbs cannot bind an rkey to one connection: the bytes of a write from an endpoint that was
// not granted may land, but its notice (WriteArrived) is refused and that endpoint fails, so the
// owner never counts it; the owner must re-check what it holds before using it (DataNode::seal).
// Destroying the region deregisters it: its key is worthless from then on in every backend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "transport/region_descriptor.h"

namespace imgcast::transport {

class Endpoint;

enum class Access : unsigned {
  kLocalRead = 1u << 0,    // may be the source of writes
  kRemoteWrite = 1u << 1,  // peers may write into it
  kReadWrite = kLocalRead | kRemoteWrite,
};
constexpr bool has(Access set, Access bit) noexcept {
  return (static_cast<unsigned>(set) & static_cast<unsigned>(bit)) != 0;
}

class MemoryRegion {
 public:
  virtual ~MemoryRegion() = default;
  MemoryRegion(const MemoryRegion&) = delete;
  MemoryRegion& operator=(const MemoryRegion&) = delete;

  virtual std::span<std::byte> bytes() const noexcept = 0;
  // What a peer needs to write here; send it only over an authenticated channel.
  virtual const RegionDescriptor& descriptor() const noexcept = 0;
  virtual Access access() const noexcept = 0;

  // Lets `writer` write into this region (and have its writes reported). Granting twice is one
  // grant. Only for a region registered with kRemoteWrite.
  void allow_writer(const Endpoint& writer);
  // Takes the grant back; later writes from `writer` are refused like a stranger's.
  void revoke_writer(const Endpoint& writer) noexcept;
  // Whether the endpoint with this id was granted (the backends' receive paths ask).
  bool allows_writer(std::uint64_t endpoint_id) const noexcept;

 protected:
  MemoryRegion() = default;
  // Called after allow_writer / revoke_writer changed a grant, so a region that wraps regions of
  // other contexts (transport/fallback) passes it on to the endpoint that really carries the
  // writes; a backend's own region needs nothing more than the recorded id.
  virtual void on_writer_allowed(const Endpoint& writer) { (void)writer; }
  virtual void on_writer_revoked(const Endpoint& writer) noexcept { (void)writer; }

 private:
  std::vector<std::uint64_t> writers_;  // granted Endpoint::id()s; one or two (a node's parents)
};

// A peer's region, imported on one endpoint from its descriptor (Endpoint::import_region).
// Valid only with that endpoint; must not outlive it.
class RemoteRegion {
 public:
  virtual ~RemoteRegion() = default;
  RemoteRegion(const RemoteRegion&) = delete;
  RemoteRegion& operator=(const RemoteRegion&) = delete;

  virtual const RegionDescriptor& descriptor() const noexcept = 0;
  std::uint64_t length() const noexcept { return descriptor().length; }

 protected:
  RemoteRegion() = default;
};

}  // namespace imgcast::transport
