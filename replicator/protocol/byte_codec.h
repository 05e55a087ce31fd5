// ByteWriter / ByteReader: build and parse the replicator's control messages. Fixed-width
// little-endian integers, length-prefixed strings and blobs. The reader treats its input as
// hostile: every read is bounds-checked, a failed read sets a sticky error and returns zeros,
// and a blob's length is checked against a caller-given bound before anything is copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace imgcast::replicator {

class ByteWriter {
 public:
  ByteWriter& u8(std::uint8_t v);
  ByteWriter& u16(std::uint16_t v);
  ByteWriter& u32(std::uint32_t v);
  ByteWriter& u64(std::uint64_t v);
  ByteWriter& raw(std::span<const std::byte> bytes);   // no length prefix
  ByteWriter& blob(std::span<const std::byte> bytes);  // u32 length + bytes
  ByteWriter& str(std::string_view text);              // u32 length + bytes
  const std::vector<std::byte>& bytes() const noexcept { return out_; }
  std::vector<std::byte> take() noexcept { return std::move(out_); }

 private:
  std::vector<std::byte> out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> in) noexcept : in_(in) {}

  std::uint8_t u8() noexcept;
  std::uint16_t u16() noexcept;
  std::uint32_t u32() noexcept;
  std::uint64_t u64() noexcept;
  // Exactly n bytes, or an empty span and the error set.
  std::span<const std::byte> raw(std::size_t n) noexcept;
  // A u32-prefixed blob of at most max_bytes; longer sets the error.
  std::vector<std::byte> blob(std::size_t max_bytes);
  std::string str(std::size_t max_bytes);

  bool ok() const noexcept { return ok_; }
  // ok() and every byte consumed: what a decoder checks last.
  bool done() const noexcept { return ok_ && pos_ == in_.size(); }

 private:
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace imgcast::replicator
