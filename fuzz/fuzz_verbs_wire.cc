// libFuzzer target: the verbs backend's decoders of peer bytes. The first input byte picks one:
// 0 a SEND message (rdma_wire.h), 1 a region key (the next 8 bytes give the region length),
// 2 the connection's private data. Property: whatever decodes re-encodes to exactly the input
// (for the private data: to its first 16 bytes, the rest being the CM's zero padding).
#include <cstdlib>
#include <cstring>
#include <vector>

#include "transport/byte_order.h"
#include "transport/verbs/connect_params.h"
#include "transport/verbs/rdma_wire.h"
#include "transport/verbs/region_key.h"

namespace {

using namespace imgcast::transport;
using namespace imgcast::transport::verbs;

void check(bool ok) {
  if (!ok)
    std::abort();
}

void message(std::span<const std::byte> in) {
  const auto m = decode_message(in, 8192 - WireMessage::kHeaderBytes);
  if (!m)
    return;
  std::vector<std::byte> out(WireMessage::kHeaderBytes + 8192);
  std::size_t n = 0;
  if (m->type == MessageType::kNotice)
    n = encode_notice(out, m->credits, m->imm, m->length, m->notice);
  else if (m->type == MessageType::kControl)
    n = encode_control(out, m->credits, m->flags, m->fragment);
  else
    n = encode_credit(out, m->credits);
  check(n == in.size() && std::equal(in.begin(), in.end(), out.begin()));
}

void region_key(std::span<const std::byte> in) {
  if (in.size() < 8)
    return;
  const std::uint64_t length = load_le64(in.data());
  const auto key = RegionKey::decode(in.subspan(8), length);
  if (!key)
    return;
  const auto out = key->encode();
  check(out.size() == in.size() - 8 && std::equal(out.begin(), out.end(), in.begin() + 8));
}

void connect_params(std::span<const std::byte> in) {
  const auto params = ConnectParams::decode(in);
  if (!params)
    return;
  const auto out = params->encode();
  check(std::equal(out.begin(), out.end(), in.begin()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      message(in);
      break;
    case 1:
      region_key(in);
      break;
    default:
      connect_params(in);
      break;
  }
  return 0;
}
