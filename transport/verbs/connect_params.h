// ConnectParams: what each side of a verbs connection tells the other in the rdma_cm private
// data (the connect request's and the accept's): its receive depth, which becomes the other's
// initial credits (credit_ledger.h), and the size of each receive buffer, which bounds the
// other's SENDs. Region descriptors do not travel here: they go in control messages, as with
// every backend, so the replicator's protocol is the same over all of them.
//
// Wire form, little-endian: u32 magic "IVB1" | u16 version (1) | u16 reserved (0)
//   | u32 receive_depth | u32 receive_buffer_bytes
// The listener's address is the "host:port" text of TCP and UCX (HostPort, transport/host_port.h):
// an IP address of the RDMA netdev (IPoIB, or the RoCE interface) and the rdma_cm port.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace imgcast::transport::verbs {

struct ConnectParams {
  static constexpr std::size_t kBytes = 16;
  // Both ends must agree what a sane peer looks like; these bound what we allocate for it.
  static constexpr std::uint32_t kMinReceiveDepth = 8;
  static constexpr std::uint32_t kMaxReceiveDepth = 1u << 15;
  static constexpr std::uint32_t kMinBufferBytes = 256;
  static constexpr std::uint32_t kMaxBufferBytes = 1u << 20;

  std::uint32_t receive_depth = 0;
  std::uint32_t receive_buffer_bytes = 0;

  std::vector<std::byte> encode() const;
  // nullopt for a wrong magic or version, non-zero reserved bits, values outside the bounds
  // above, or fewer than kBytes. Longer input is accepted when the rest is zero: the IB CM pads
  // private data to its fixed size with zeros.
  static std::optional<ConnectParams> decode(std::span<const std::byte> bytes);

  bool operator==(const ConnectParams&) const = default;
};

}  // namespace imgcast::transport::verbs
