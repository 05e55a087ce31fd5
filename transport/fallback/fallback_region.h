// FallbackRegion: one registration with each of the composite's contexts (the RDMA one may be
// missing: registration refused, e.g. RLIMIT_MEMLOCK), behind one MemoryRegion. Its descriptor
// carries both inner descriptors (TwoHalves in the key), so a peer writes through whichever
// backend its link runs on. Grants are passed on to the inner region of the link's backend,
// naming the inner endpoint, since that is who the backend's receive path checks.
#pragma once

#include <memory>

#include "transport/memory_region.h"

namespace imgcast::transport::fallback {

class FallbackRegion final : public MemoryRegion {
 public:
  // `rdma` may be null; `tcp` may not. `kind`: the outer descriptor's kind (the context's).
  FallbackRegion(std::unique_ptr<MemoryRegion> rdma, std::unique_ptr<MemoryRegion> tcp, Kind kind);

  std::span<std::byte> bytes() const noexcept override { return tcp_->bytes(); }
  const RegionDescriptor& descriptor() const noexcept override { return descriptor_; }
  Access access() const noexcept override { return tcp_->access(); }

  // The inner region a link on `kind` uses; null when this region has no such half.
  const MemoryRegion* half(Kind kind) const noexcept;

 private:
  void on_writer_allowed(const Endpoint& writer) override;
  void on_writer_revoked(const Endpoint& writer) noexcept override;
  MemoryRegion* half_mutable(Kind kind) const noexcept;

  std::unique_ptr<MemoryRegion> rdma_;
  std::unique_ptr<MemoryRegion> tcp_;
  RegionDescriptor descriptor_;
};

// A peer's FallbackRegion imported on one link: the inner region of the link's backend.
class FallbackRemoteRegion final : public RemoteRegion {
 public:
  FallbackRemoteRegion(RegionDescriptor outer, std::unique_ptr<RemoteRegion> inner)
      : outer_(std::move(outer)), inner_(std::move(inner)) {}
  const RegionDescriptor& descriptor() const noexcept override { return outer_; }
  const RemoteRegion& inner() const noexcept { return *inner_; }

 private:
  RegionDescriptor outer_;
  std::unique_ptr<RemoteRegion> inner_;
};

// Which half of an outer descriptor a link on `kind` imports, checked: both nested descriptors
// must decode and describe as many bytes as the outer one claims (what the replicator checked).
// Throws Error (kProtocolError / kUnavailable) naming what is wrong.
RegionDescriptor inner_descriptor(const RegionDescriptor& outer, Kind kind);

}  // namespace imgcast::transport::fallback
