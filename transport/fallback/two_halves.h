// TwoHalves: how the fallback composite packs what each of its two contexts made into the one
// byte string the interface carries: a listen address (Listener::address) or a region's key
// (RegionDescriptor::key). The RDMA half may be empty (that node has no usable RDMA); the TCP
// half never is. Peers send these bytes, so unpack() treats them as hostile.
//
// Wire form, little-endian: u32 magic 'IFB1' | u16 rdma_length | rdma | u16 tcp_length | tcp
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

namespace imgcast::transport::fallback {

struct TwoHalves {
  std::vector<std::byte> rdma;  // empty: none
  std::vector<std::byte> tcp;
};

inline constexpr std::size_t kTwoHalvesOverhead = 4 + 2 + 2;

// Each half must be shorter than 64 KiB (callers bound them far lower); throws Error otherwise.
std::vector<std::byte> pack(std::span<const std::byte> rdma, std::span<const std::byte> tcp);
// nullopt for anything malformed: short, bad magic, lengths past the end, trailing bytes, an
// empty TCP half.
std::optional<TwoHalves> unpack(std::span<const std::byte> bytes);

}  // namespace imgcast::transport::fallback
