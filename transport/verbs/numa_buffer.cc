#include <fmt/format.h>
#include <numa.h>

#include <cstdlib>
#include <utility>

#include "transport/error.h"
#include "transport/verbs/handles.h"

namespace imgcast::transport::verbs {

NumaBuffer::NumaBuffer(std::size_t bytes, int numa_node) : size_(bytes) {
  // numa_available() must be asked before any other libnuma call (numa(3)).
  if (numa_node >= 0 && numa_available() >= 0) {
    data_ = static_cast<std::byte*>(numa_alloc_onnode(bytes, numa_node));
    from_numa_ = data_ != nullptr;
  }
  if (data_ == nullptr) {
    constexpr std::size_t kPage = 4096;
    data_ = static_cast<std::byte*>(std::aligned_alloc(kPage, (bytes + kPage - 1) / kPage * kPage));
  }
  if (data_ == nullptr) {
    throw Error(StatusCode::kIoError,
                fmt::format("cannot allocate {} bytes of RDMA buffers", bytes));
  }
  std::memset(data_, 0, bytes);  // also faults the pages in on the chosen node
}

NumaBuffer::~NumaBuffer() { release(); }

NumaBuffer::NumaBuffer(NumaBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      from_numa_(other.from_numa_) {}

NumaBuffer& NumaBuffer::operator=(NumaBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    from_numa_ = other.from_numa_;
  }
  return *this;
}

void NumaBuffer::release() noexcept {
  if (data_ == nullptr)
    return;
  if (from_numa_) {
    numa_free(data_, size_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
}

}  // namespace imgcast::transport::verbs
