// random_bytes: the seeded payloads the transport tests send, compare and regenerate. The same
// seed gives the same bytes, so a receiver (or a forked child) rebuilds what it must have got
// instead of being handed a copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace imgcast::transport::test {

inline std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::vector<std::byte> out(n);
  std::mt19937_64 random(seed);
  for (auto& b : out)
    b = static_cast<std::byte>(random());
  return out;
}

}  // namespace imgcast::transport::test
