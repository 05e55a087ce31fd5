// libFuzzer target: the fallback composite's packed address / region key (two_halves.h), which
// arrives from a peer under --transport auto. Property: whatever unpacks packs to exactly the
// input, and its TCP half is never empty.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "transport/fallback/two_halves.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fb = imgcast::transport::fallback;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  if (const auto halves = fb::unpack(in)) {
    if (halves->tcp.empty()) std::abort();
    const std::vector<std::byte> out = fb::pack(halves->rdma, halves->tcp);
    if (out.size() != size || !std::equal(out.begin(), out.end(), in.begin())) std::abort();
  }
  return 0;
}
