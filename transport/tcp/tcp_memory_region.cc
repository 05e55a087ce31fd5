#include "transport/tcp/tcp_memory_region.h"

#include "transport/byte_order.h"

namespace imgcast::transport::tcp {

TcpMemoryRegion::TcpMemoryRegion(std::shared_ptr<TcpCore> core, std::span<std::byte> memory,
                                 Access access, int file)
    : core_(std::move(core)), memory_(memory), access_(access) {
  const std::uint64_t key = random_u64();
  descriptor_.kind = Kind::kTcp;
  descriptor_.region_id = core_->next_region_id++;
  descriptor_.base = 0;
  descriptor_.length = memory.size();
  descriptor_.key.resize(8);
  store_le64(descriptor_.key.data(), key);
  core_->regions[descriptor_.region_id] =
      RegisteredRegion{memory, key, has(access, Access::kRemoteWrite), this, file};
}

TcpMemoryRegion::~TcpMemoryRegion() { core_->regions.erase(descriptor_.region_id); }

}  // namespace imgcast::transport::tcp
