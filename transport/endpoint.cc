#include "transport/endpoint.h"

#include <fmt/format.h>

#include <atomic>

namespace imgcast::transport {

namespace {
// Ids start at 1 so 0 never names an endpoint; 64 bits never wrap in a process's life.
std::atomic<std::uint64_t> next_endpoint_id{1};
}  // namespace

Endpoint::Endpoint() : id_(next_endpoint_id.fetch_add(1, std::memory_order_relaxed)) {}

Status Endpoint::send_control(std::span<const std::byte> message) {
  if (message.size() > kMaxControlBytes) {
    return {StatusCode::kInvalidArgument, fmt::format("control message of {} bytes exceeds {}",
                                                      message.size(), kMaxControlBytes)};
  }
  return do_send_control(message);
}

Status Endpoint::post_write(const WriteRequest& request) {
  if (request.source == nullptr || request.target == nullptr || request.length == 0) {
    return {StatusCode::kInvalidArgument, "write needs a source, a target and a length > 0"};
  }
  if (!has(request.source->access(), Access::kLocalRead)) {
    return {StatusCode::kInvalidArgument, "write source region is not registered for reading"};
  }
  // Written so that no sum can overflow: offset <= size and length <= size - offset.
  const std::uint64_t source_size = request.source->bytes().size();
  if (request.source_offset > source_size || request.length > source_size - request.source_offset) {
    return {StatusCode::kOutOfRange,
            fmt::format("write source [{}, +{}) is outside the {}-byte local region",
                        request.source_offset, request.length, source_size)};
  }
  const std::uint64_t target_size = request.target->length();
  if (request.target_offset > target_size || request.length > target_size - request.target_offset) {
    return {StatusCode::kOutOfRange,
            fmt::format("write target [{}, +{}) is outside the {}-byte region of {}",
                        request.target_offset, request.length, target_size, peer_name())};
  }
  return do_post_write(request);
}

}  // namespace imgcast::transport
