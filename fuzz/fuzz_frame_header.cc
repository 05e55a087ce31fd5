// libFuzzer target: the TCP frame header decoder. Property beyond "no crash": whatever decodes
// re-encodes to the same 48 bytes (one canonical encoding, so no two byte strings mean the same).
#include <cstdlib>
#include <cstring>

#include "transport/tcp/frame_header.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using imgcast::transport::tcp::FrameHeader;
  if (size < FrameHeader::kBytes) return 0;
  std::array<std::byte, FrameHeader::kBytes> in;
  std::memcpy(in.data(), data, in.size());
  const auto header = FrameHeader::decode(in, 1u << 20);
  if (header) {
    std::array<std::byte, FrameHeader::kBytes> out;
    header->encode(out);
    if (out != in) std::abort();
  }
  return 0;
}
