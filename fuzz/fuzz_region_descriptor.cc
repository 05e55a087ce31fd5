// libFuzzer target: the region descriptor decoder (it arrives from a peer). Property: whatever
// decodes re-encodes to exactly the input.
#include <cstdlib>
#include <vector>

#include "transport/region_descriptor.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using imgcast::transport::RegionDescriptor;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  if (const auto descriptor = RegionDescriptor::decode(in)) {
    const std::vector<std::byte> out = descriptor->encode();
    if (out.size() != size || !std::equal(out.begin(), out.end(), in.begin())) std::abort();
  }
  return 0;
}
