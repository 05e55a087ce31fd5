// VerbsRemoteRegion: a peer's region descriptor, checked and decoded for one endpoint: kind,
// address range and the rkey of every segment (region_key.h). No device is involved (an rkey
// is only a number until a WR carries it), so this lives in the pure logic library and its
// checks are unit-tested everywhere.
#pragma once

#include "transport/memory_region.h"
#include "transport/verbs/region_key.h"
#include "transport/verbs/write_plan.h"

namespace imgcast::transport::verbs {

class VerbsRemoteRegion final : public RemoteRegion {
 public:
  // Throws Error (kInvalidArgument) for a descriptor of another backend or a malformed key.
  explicit VerbsRemoteRegion(const RegionDescriptor& descriptor);

  const RegionDescriptor& descriptor() const noexcept override { return descriptor_; }
  MrLayout layout() const noexcept;

 private:
  RegionDescriptor descriptor_;
  RegionKey key_;
};

}  // namespace imgcast::transport::verbs
