// UCX regions. UcxMemoryRegion maps local memory with ucp_mem_map (so puts go zero-copy from or
// into it) and packs its rkey; the descriptor carries base address, length and the packed rkey.
// UcxRemoteRegion is a peer's rkey unpacked on one endpoint.
#pragma once

#include <memory>

#include "transport/memory_region.h"
#include "transport/ucx/ucx_core.h"

namespace imgcast::transport::ucx {

class UcxMemoryRegion final : public MemoryRegion {
 public:
  // Throws Error when UCX cannot map the memory or pack its key.
  UcxMemoryRegion(std::shared_ptr<UcxCore> core, std::span<std::byte> memory, Access access,
                  std::uint32_t region_id);
  ~UcxMemoryRegion() override;

  std::span<std::byte> bytes() const noexcept override { return memory_; }
  const RegionDescriptor& descriptor() const noexcept override { return descriptor_; }
  Access access() const noexcept override { return access_; }
  ucp_mem_h memh() const noexcept { return memh_.get(); }

 private:
  std::shared_ptr<UcxCore> core_;  // declared first: the context outlives the mapping
  std::span<std::byte> memory_;
  Access access_;
  MemHandle memh_;
  RegionDescriptor descriptor_;
};

class UcxRemoteRegion final : public RemoteRegion {
 public:
  UcxRemoteRegion(RegionDescriptor descriptor, RkeyHandle rkey)
      : descriptor_(std::move(descriptor)), rkey_(std::move(rkey)) {}
  const RegionDescriptor& descriptor() const noexcept override { return descriptor_; }
  ucp_rkey_h rkey() const noexcept { return rkey_.get(); }

 private:
  RegionDescriptor descriptor_;
  RkeyHandle rkey_;
};

}  // namespace imgcast::transport::ucx
