#include "replicator/protocol/byte_codec.h"

#include <cstring>
#include <limits>
#include <stdexcept>

#include "transport/byte_order.h"

namespace imgcast::replicator {

namespace tp = transport;

namespace {
template <typename T>
void append(std::vector<std::byte>& out, T value) {
  std::byte bytes[sizeof(T)];
  tp::store_le(bytes, value);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}
}  // namespace

ByteWriter& ByteWriter::u8(std::uint8_t v) {
  out_.push_back(static_cast<std::byte>(v));
  return *this;
}
ByteWriter& ByteWriter::u16(std::uint16_t v) {
  append(out_, v);
  return *this;
}
ByteWriter& ByteWriter::u32(std::uint32_t v) {
  append(out_, v);
  return *this;
}
ByteWriter& ByteWriter::u64(std::uint64_t v) {
  append(out_, v);
  return *this;
}
ByteWriter& ByteWriter::raw(std::span<const std::byte> bytes) {
  out_.insert(out_.end(), bytes.begin(), bytes.end());
  return *this;
}
ByteWriter& ByteWriter::blob(std::span<const std::byte> bytes) {
  // A truncated length prefix would desynchronise the reader on everything after it.
  if (bytes.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw std::length_error("a blob of 4 GiB or more does not fit a u32 length prefix");
  }
  u32(static_cast<std::uint32_t>(bytes.size()));
  return raw(bytes);
}
ByteWriter& ByteWriter::str(std::string_view text) {
  return blob(std::as_bytes(std::span(text.data(), text.size())));
}

std::span<const std::byte> ByteReader::raw(std::size_t n) noexcept {
  if (!ok_ || n > in_.size() - pos_) {
    ok_ = false;
    return {};
  }
  const auto out = in_.subspan(pos_, n);
  pos_ += n;
  return out;
}

std::uint8_t ByteReader::u8() noexcept {
  const auto b = raw(1);
  return b.empty() ? 0 : static_cast<std::uint8_t>(b[0]);
}
std::uint16_t ByteReader::u16() noexcept {
  const auto b = raw(2);
  return b.empty() ? 0 : tp::load_le16(b.data());
}
std::uint32_t ByteReader::u32() noexcept {
  const auto b = raw(4);
  return b.empty() ? 0 : tp::load_le32(b.data());
}
std::uint64_t ByteReader::u64() noexcept {
  const auto b = raw(8);
  return b.empty() ? 0 : tp::load_le64(b.data());
}

std::vector<std::byte> ByteReader::blob(std::size_t max_bytes) {
  const std::uint32_t length = u32();
  // The bound is checked before anything is allocated: a hostile length costs nothing.
  if (!ok_ || length > max_bytes) {
    ok_ = false;
    return {};
  }
  const auto bytes = raw(length);
  return {bytes.begin(), bytes.end()};
}

std::string ByteReader::str(std::size_t max_bytes) {
  const auto bytes = blob(max_bytes);
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace imgcast::replicator
