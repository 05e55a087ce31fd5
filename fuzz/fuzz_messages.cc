// libFuzzer target: the replicator's control-message decoder. Property: whatever decodes
// re-encodes to exactly the input (no lenient parsing, no ignored bytes).
#include <cstdlib>
#include <vector>

#include "replicator/protocol/messages.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  if (const auto message = imgcast::replicator::decode(in)) {
    const std::vector<std::byte> out = imgcast::replicator::encode(*message);
    if (out.size() != size || !std::equal(out.begin(), out.end(), in.begin())) std::abort();
  }
  return 0;
}
