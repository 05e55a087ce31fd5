#include "transport/ucx/ucx_memory_region.h"

#include <fmt/format.h>

#include "transport/error.h"

namespace imgcast::transport::ucx {

UcxMemoryRegion::UcxMemoryRegion(std::shared_ptr<UcxCore> core, std::span<std::byte> memory,
                                 Access access, std::uint32_t region_id)
    : core_(std::move(core)),
      memory_(memory),
      access_(access),
      memh_(nullptr, {core_->context.get()}) {
  ucp_mem_map_params_t params{};
  params.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
  params.address = memory.data();
  params.length = memory.size();
  ucp_mem_h memh = nullptr;
  if (const ucs_status_t s = ucp_mem_map(core_->context.get(), &params, &memh); s != UCS_OK) {
    throw Error(StatusCode::kIoError,
                describe("ucp_mem_map", s) + fmt::format(" ({} bytes)", memory.size()));
  }
  memh_.reset(memh);
  void* packed = nullptr;
  std::size_t packed_size = 0;
  if (const ucs_status_t s = ucp_rkey_pack(core_->context.get(), memh, &packed, &packed_size);
      s != UCS_OK) {
    throw Error(StatusCode::kIoError, describe("ucp_rkey_pack", s));
  }
  const RkeyBufferHandle buffer(packed);
  if (packed_size > RegionDescriptor::kMaxKeyBytes) {
    throw Error(StatusCode::kUnavailable,
                fmt::format("UCX packed a {}-byte rkey, more than the {} a descriptor carries",
                            packed_size, RegionDescriptor::kMaxKeyBytes));
  }
  descriptor_.kind = Kind::kUcx;
  descriptor_.region_id = region_id;
  descriptor_.base = reinterpret_cast<std::uintptr_t>(memory.data());
  descriptor_.length = memory.size();
  const auto* bytes = static_cast<const std::byte*>(packed);
  descriptor_.key.assign(bytes, bytes + packed_size);
  if (has(access, Access::kRemoteWrite))
    core_->writable.add(this);
}

// ucp_mem_unmap (memh_) revokes the rkey: a put that comes later fails at the peer.
UcxMemoryRegion::~UcxMemoryRegion() { core_->writable.remove(this); }

}  // namespace imgcast::transport::ucx
