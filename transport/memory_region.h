// MemoryRegion: local memory registered with a Context so peers may write into it (a receiver's
// staging file mapping) or so it may be the source of writes (any sender). Created by
// Context::register_memory; deregisters on destruction. Owned by the caller, which must keep the
// memory itself alive for the region's lifetime. Not thread-safe: use from the Context's thread.
#pragma once

#include <cstddef>
#include <span>

#include "transport/region_descriptor.h"

namespace imgcast::transport {

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

 protected:
  MemoryRegion() = default;
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
