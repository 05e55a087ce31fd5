#include "transport/verbs/verbs_memory_region.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "transport/error.h"
#include "transport/log.h"

namespace imgcast::transport::verbs {

namespace {

std::uint64_t preferred_segment_bytes(const DeviceInfo& info) {
  std::uint64_t bytes = kDefaultSegmentBytes;
  if (const char* text = std::getenv("IMGCAST_RDMA_MR_BYTES"); text != nullptr && *text != '\0') {
    bytes = std::strtoull(text, nullptr, 10);
  }
  if (info.max_mr_bytes != 0 && bytes > info.max_mr_bytes)
    bytes = info.max_mr_bytes;
  return bytes;
}

std::string memlock_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_MEMLOCK, &limit) != 0)
    return "unknown";
  if (limit.rlim_cur == RLIM_INFINITY)
    return "unlimited";
  return fmt::format("{} KiB", limit.rlim_cur / 1024);
}

// Pinning failures that on-demand paging (which pins nothing) gets around.
bool pin_refused(int error) {
  // ENOMEM/EPERM/EAGAIN: the memory lock limit. EFAULT: since Linux 6.5 the kernel refuses
  // long-term writable pins of file pages that need dirty tracking (a MAP_SHARED mapping of
  // an ext4 or xfs file; tmpfs and anonymous memory are fine).
  return error == ENOMEM || error == EPERM || error == EAGAIN || error == EFAULT;
}

std::string registration_hint(int error) {
  if (error == EFAULT) {
    return "the kernel refuses to pin this memory for writing (a shared mapping of a file on a "
           "disk filesystem?): stage on tmpfs (/dev/shm), use a device with on-demand paging, "
           "or another --transport";
  }
  return fmt::format(
      "the memory lock limit (ulimit -l) is {}: raise it (memlock in "
      "limits.conf) or set IMGCAST_RDMA_MR_BYTES smaller",
      memlock_limit());
}

}  // namespace

VerbsMemoryRegion::VerbsMemoryRegion(std::shared_ptr<VerbsCore> core, std::span<std::byte> memory,
                                     Access access, std::uint32_t region_id)
    : core_(std::move(core)), memory_(memory), access_(access) {
  // Remote write requires local write as well (ibv_reg_mr(3)); a source only needs local
  // read, which every MR allows.
  const int flags =
      has(access, Access::kRemoteWrite) ? IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE : 0;
  segment_bytes_ = choose_segment_bytes(memory.size(), preferred_segment_bytes(core_->info));
  const std::uint64_t count = segments_for(memory.size(), segment_bytes_);
  bool used_odp = false;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::byte* start = memory.data() + i * segment_bytes_;
    const std::uint64_t length = std::min(segment_bytes_, memory.size() - i * segment_bytes_);
    MrHandle mr(ibv_reg_mr(core_->pd.get(), start, length, flags));
    const int error = errno;
    if (!mr && pin_refused(error) && core_->info.odp_rc_write) {
      // Pinning was refused: on-demand paging registers without pinning; the NIC faults pages
      // in as it touches them, at some cost per first touch.
      mr.reset(ibv_reg_mr(core_->pd.get(), start, length, flags | IBV_ACCESS_ON_DEMAND));
      used_odp = used_odp || mr != nullptr;
    }
    if (!mr) {
      throw Error(StatusCode::kIoError,
                  fmt::format("cannot register {} bytes with {} ({}): {}", length, core_->info.name,
                              std::strerror(error), registration_hint(error)));
    }
    lkeys_.push_back(mr->lkey);
    mrs_.push_back(std::move(mr));
  }
  if (used_odp)
    log().info("verbs: registered {} bytes with on-demand paging", memory.size());
  RegionKey key;
  key.segment_bytes = segment_bytes_;
  for (const MrHandle& mr : mrs_)
    key.keys.push_back(mr->rkey);
  descriptor_.kind = Kind::kVerbs;
  descriptor_.region_id = region_id;
  descriptor_.base = reinterpret_cast<std::uintptr_t>(memory.data());
  descriptor_.length = memory.size();
  descriptor_.key = key.encode();
  if (has(access, Access::kRemoteWrite))
    core_->writable.add(this);
}

// The MRs go with the members: their rkeys are invalid from then on (a late write faults).
VerbsMemoryRegion::~VerbsMemoryRegion() { core_->writable.remove(this); }

MrLayout VerbsMemoryRegion::layout() const noexcept {
  return {descriptor_.base, descriptor_.length, segment_bytes_, lkeys_};
}

}  // namespace imgcast::transport::verbs
