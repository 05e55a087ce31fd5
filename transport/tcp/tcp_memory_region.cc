#include "transport/tcp/tcp_memory_region.h"

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>

#include "transport/byte_order.h"
#include "transport/error.h"

namespace imgcast::transport::tcp {

ContextCore::ContextCore(const ContextOptions& o) : options(o) {}

void ContextCore::complete(Completion completion) {
  if (ready.empty() && !in_poll) {
    const std::uint64_t one = 1;
    (void)!::write(wakeup.get(), &one, sizeof one);
  }
  ready.push_back(std::move(completion));
}

void ContextCore::forget(const Endpoint* endpoint) { forget_completions(ready, endpoint); }

std::uint64_t random_u64() {
  std::uint64_t value = 0;
  if (::getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) {
    throw Error(StatusCode::kIoError, "the kernel random generator (getrandom) failed");
  }
  return value;
}

TcpMemoryRegion::TcpMemoryRegion(std::shared_ptr<ContextCore> core, std::span<std::byte> memory,
                                 Access access)
    : core_(std::move(core)), memory_(memory), access_(access) {
  const std::uint64_t key = random_u64();
  descriptor_.kind = Kind::kTcp;
  descriptor_.region_id = core_->next_region_id++;
  descriptor_.base = 0;
  descriptor_.length = memory.size();
  descriptor_.key.resize(8);
  store_le64(descriptor_.key.data(), key);
  core_->regions[descriptor_.region_id] =
      RegisteredRegion{memory, key, has(access, Access::kRemoteWrite)};
}

TcpMemoryRegion::~TcpMemoryRegion() { core_->regions.erase(descriptor_.region_id); }

}  // namespace imgcast::transport::tcp
