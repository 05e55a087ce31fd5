// Write planning: how one WriteRequest becomes RDMA work requests. A write may cross MR segment
// boundaries on either side (regions are registered as several MRs, region_key.h), and one WR
// may carry at most the port's max_msg_sz bytes, so the byte range is cut wherever any of those
// limits falls. Pure arithmetic, no device: the endpoint posts the pieces in order, the last one
// as RDMA_WRITE_WITH_IMM (rdma_wire.h explains the order of a write's WRs).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace imgcast::transport::verbs {

// Where a region's bytes are and which key covers each segment: the local lkeys of a registered
// region, or a peer's rkeys from its descriptor.
struct MrLayout {
  std::uint64_t base = 0;  // address of byte 0 (local virtual address, or the peer's)
  std::uint64_t length = 0;
  std::uint64_t segment_bytes = 0;      // > 0
  std::span<const std::uint32_t> keys;  // segments_for(length, segment_bytes) of them
};

// One WR's worth: a contiguous range inside one source MR and one target MR.
struct WrPiece {
  std::uint64_t local_addr = 0;
  std::uint32_t lkey = 0;
  std::uint64_t remote_addr = 0;
  std::uint32_t rkey = 0;
  std::uint32_t length = 0;

  bool operator==(const WrPiece&) const = default;
};

// Appends the pieces of source[source_offset, +length) -> target[target_offset, +length) to
// `out`, in address order, each at most `max_piece` bytes. REQUIRES: length > 0, max_piece > 0,
// both ranges inside their layouts (Endpoint::post_write checked them), keys complete.
void plan_write(const MrLayout& source, std::uint64_t source_offset, const MrLayout& target,
                std::uint64_t target_offset, std::uint32_t length, std::uint32_t max_piece,
                std::vector<WrPiece>& out);

}  // namespace imgcast::transport::verbs
