// Verbs regions. VerbsMemoryRegion registers local memory with ibv_reg_mr, as one MR per
// segment (region_key.h) so that a many-GiB staging file neither exceeds the device's
// max_mr_size nor has to be pinned by one enormous call. Where pinning fails (the memory lock
// limit, ulimit -l; or, since Linux 6.5, a writable shared mapping of a file on a disk
// filesystem, which the kernel will not pin long-term) and the device offers on-demand paging,
// the segment is registered with IBV_ACCESS_ON_DEMAND instead. The descriptor carries base,
// length and the rkeys.
#pragma once

#include <memory>
#include <vector>

#include "transport/memory_region.h"
#include "transport/verbs/region_key.h"
#include "transport/verbs/verbs_core.h"
#include "transport/verbs/write_plan.h"

namespace imgcast::transport::verbs {

// Segments are at most this large unless IMGCAST_RDMA_MR_BYTES says otherwise.
inline constexpr std::uint64_t kDefaultSegmentBytes = 1ULL << 30;

class VerbsMemoryRegion final : public MemoryRegion {
 public:
  // Throws Error naming the size and the memory lock limit when registration fails.
  VerbsMemoryRegion(std::shared_ptr<VerbsCore> core, std::span<std::byte> memory, Access access,
                    std::uint32_t region_id);
  ~VerbsMemoryRegion() override;

  std::span<std::byte> bytes() const noexcept override { return memory_; }
  const RegionDescriptor& descriptor() const noexcept override { return descriptor_; }
  Access access() const noexcept override { return access_; }
  // The lkeys, for the write planner.
  MrLayout layout() const noexcept;

 private:
  std::shared_ptr<VerbsCore> core_;  // first: the PD outlives the MRs
  std::span<std::byte> memory_;
  Access access_;
  std::uint64_t segment_bytes_ = 0;
  std::vector<MrHandle> mrs_;
  std::vector<std::uint32_t> lkeys_;
  RegionDescriptor descriptor_;
};

}  // namespace imgcast::transport::verbs
