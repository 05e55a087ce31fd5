// WritableRegions: the regions of one Context that peers may write into, for the backends whose
// write notices do not name their region (UCX, verbs). A notice is taken only from an endpoint
// that one of them granted (MemoryRegion::allow_writer). Header-only; one Context's thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "transport/memory_region.h"

namespace imgcast::transport {

class WritableRegions {
 public:
  void add(const MemoryRegion* region) { regions_.push_back(region); }
  void remove(const MemoryRegion* region) noexcept {
    regions_.erase(std::remove(regions_.begin(), regions_.end(), region), regions_.end());
  }
  // A node holds one or two such regions: a scan is cheaper than any index.
  bool any_allows(std::uint64_t endpoint_id) const noexcept {
    return std::any_of(regions_.begin(), regions_.end(),
                       [&](const MemoryRegion* r) { return r->allows_writer(endpoint_id); });
  }

 private:
  std::vector<const MemoryRegion*> regions_;
};

}  // namespace imgcast::transport
