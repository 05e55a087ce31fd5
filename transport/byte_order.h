// Fixed-width little-endian loads and stores for wire formats. memcpy-based, so they are safe on
// unaligned pointers and compile to single moves on x86-64.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace imgcast::transport {

template <typename T>
inline T byte_swap(T v) noexcept {  // std::byteswap is C++23
  if constexpr (sizeof(T) == 2)
    return static_cast<T>(__builtin_bswap16(v));
  if constexpr (sizeof(T) == 4)
    return static_cast<T>(__builtin_bswap32(v));
  if constexpr (sizeof(T) == 8)
    return static_cast<T>(__builtin_bswap64(v));
  return v;
}
template <typename T>
inline T load_le(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big)
    v = byte_swap(v);
  return v;
}
template <typename T>
inline void store_le(std::byte* p, T v) noexcept {
  if constexpr (std::endian::native == std::endian::big)
    v = byte_swap(v);
  std::memcpy(p, &v, sizeof v);
}
inline std::uint16_t load_le16(const std::byte* p) noexcept { return load_le<std::uint16_t>(p); }
inline std::uint32_t load_le32(const std::byte* p) noexcept { return load_le<std::uint32_t>(p); }
inline std::uint64_t load_le64(const std::byte* p) noexcept { return load_le<std::uint64_t>(p); }
inline void store_le16(std::byte* p, std::uint16_t v) noexcept { store_le(p, v); }
inline void store_le32(std::byte* p, std::uint32_t v) noexcept { store_le(p, v); }
inline void store_le64(std::byte* p, std::uint64_t v) noexcept { store_le(p, v); }

}  // namespace imgcast::transport
