// TCP regions. A TcpMemoryRegion registers local memory in the context's registry under an id
// and a random 64-bit write key; the key plays the part of an RDMA rkey: a write frame must
// carry it, so a peer that was never sent the descriptor cannot write into the region. The key
// alone is not enough: the frame must also come on an endpoint the owner granted
// (MemoryRegion::allow_writer), so a peer that sniffed the descriptor off the wire cannot write
// on a connection of its own. The key is fresh from the CSPRNG for every registration.
#pragma once

#include <memory>

#include "transport/memory_region.h"
#include "transport/tcp/tcp_core.h"

namespace imgcast::transport::tcp {

class TcpMemoryRegion final : public MemoryRegion {
 public:
  // `file`: see Context::register_memory.
  TcpMemoryRegion(std::shared_ptr<TcpCore> core, std::span<std::byte> memory, Access access,
                  int file = -1);
  ~TcpMemoryRegion() override;

  std::span<std::byte> bytes() const noexcept override { return memory_; }
  const RegionDescriptor& descriptor() const noexcept override { return descriptor_; }
  Access access() const noexcept override { return access_; }

 private:
  std::shared_ptr<TcpCore> core_;
  std::span<std::byte> memory_;
  Access access_;
  RegionDescriptor descriptor_;
};

class TcpRemoteRegion final : public RemoteRegion {
 public:
  explicit TcpRemoteRegion(RegionDescriptor descriptor, std::uint64_t write_key)
      : descriptor_(std::move(descriptor)), write_key_(write_key) {}
  const RegionDescriptor& descriptor() const noexcept override { return descriptor_; }
  std::uint64_t write_key() const noexcept { return write_key_; }

 private:
  RegionDescriptor descriptor_;
  std::uint64_t write_key_;
};

}  // namespace imgcast::transport::tcp
