#include "transport/memory_region.h"

#include <algorithm>

#include "transport/endpoint.h"

namespace imgcast::transport {

void MemoryRegion::allow_writer(const Endpoint& writer) {
  if (!allows_writer(writer.id()))
    writers_.push_back(writer.id());
  on_writer_allowed(writer);
}

void MemoryRegion::revoke_writer(const Endpoint& writer) noexcept {
  writers_.erase(std::remove(writers_.begin(), writers_.end(), writer.id()), writers_.end());
  on_writer_revoked(writer);
}

bool MemoryRegion::allows_writer(std::uint64_t endpoint_id) const noexcept {
  return std::find(writers_.begin(), writers_.end(), endpoint_id) != writers_.end();
}

}  // namespace imgcast::transport
