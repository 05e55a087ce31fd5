#include "transport/fallback/fallback_region.h"

#include <fmt/format.h>

#include "transport/error.h"
#include "transport/fallback/fallback_endpoint.h"
#include "transport/fallback/two_halves.h"

namespace imgcast::transport::fallback {

FallbackRegion::FallbackRegion(std::unique_ptr<MemoryRegion> rdma,
                               std::unique_ptr<MemoryRegion> tcp, Kind kind)
    : rdma_(std::move(rdma)), tcp_(std::move(tcp)) {
  const RegionDescriptor& tcp_descriptor = tcp_->descriptor();
  std::vector<std::byte> rdma_bytes;
  if (rdma_) {
    rdma_bytes = rdma_->descriptor().encode();
  }
  const std::vector<std::byte> tcp_bytes = tcp_descriptor.encode();
  // A packed UCX key is a few hundred bytes; one that would not fit leaves this region TCP-only
  // rather than failing it.
  if (kTwoHalvesOverhead + rdma_bytes.size() + tcp_bytes.size() > RegionDescriptor::kMaxKeyBytes) {
    rdma_.reset();
    rdma_bytes.clear();
  }
  descriptor_.kind = kind;
  descriptor_.region_id = tcp_descriptor.region_id;
  descriptor_.base = 0;
  descriptor_.length = tcp_descriptor.length;
  descriptor_.key = pack(rdma_bytes, tcp_bytes);
}

const MemoryRegion* FallbackRegion::half(Kind kind) const noexcept { return half_mutable(kind); }

MemoryRegion* FallbackRegion::half_mutable(Kind kind) const noexcept {
  return kind == Kind::kTcp ? tcp_.get() : rdma_.get();
}

void FallbackRegion::on_writer_allowed(const Endpoint& writer) {
  const auto* link = dynamic_cast<const FallbackEndpoint*>(&writer);
  const Endpoint* inner = link ? link->inner() : nullptr;
  if (inner == nullptr)
    return;  // not one of ours, or a link that already failed: nothing may write through it
  if (MemoryRegion* region = half_mutable(inner->kind()))
    region->allow_writer(*inner);
}

void FallbackRegion::on_writer_revoked(const Endpoint& writer) noexcept {
  const auto* link = dynamic_cast<const FallbackEndpoint*>(&writer);
  const Endpoint* inner = link ? link->inner() : nullptr;
  if (inner == nullptr)
    return;
  // Both halves: revoking a grant that was never made is harmless.
  if (rdma_)
    rdma_->revoke_writer(*inner);
  tcp_->revoke_writer(*inner);
}

RegionDescriptor inner_descriptor(const RegionDescriptor& outer, Kind kind) {
  const std::optional<TwoHalves> halves = unpack(outer.key);
  if (!halves) {
    throw Error(StatusCode::kProtocolError, "malformed region key (not an auto-transport key)");
  }
  const std::vector<std::byte>& bytes = kind == Kind::kTcp ? halves->tcp : halves->rdma;
  if (bytes.empty()) {
    throw Error(StatusCode::kUnavailable,
                fmt::format("the peer's region has no {} registration", to_string(kind)));
  }
  const std::optional<RegionDescriptor> inner = RegionDescriptor::decode(bytes);
  if (!inner || inner->kind != kind || inner->length != outer.length) {
    throw Error(StatusCode::kProtocolError,
                fmt::format("malformed {} half of a region key", to_string(kind)));
  }
  return *inner;
}

}  // namespace imgcast::transport::fallback
