#include "transport/fallback/fallback_listener.h"

#include <fmt/format.h>

#include "transport/fallback/fallback_context.h"
#include "transport/fallback/two_halves.h"
#include "transport/log.h"

namespace imgcast::transport::fallback {

FallbackListener::FallbackListener(FallbackContext& owner, std::unique_ptr<Listener> rdma,
                                   std::unique_ptr<Listener> tcp)
    : owner_(owner), rdma_(std::move(rdma)), tcp_(std::move(tcp)) {
  std::span<const std::byte> rdma_address;
  if (rdma_) {
    rdma_address = rdma_->address();
  }
  // Both must fit where one address goes (Join, Plan); an RDMA address too long to share the
  // room is dropped: peers reach this node over TCP.
  if (kTwoHalvesOverhead + rdma_address.size() + tcp_->address().size() > kMaxAddressBytes) {
    log().warn(
        "the {} listen address is too long to publish with the TCP one: peers reach this "
        "node over TCP",
        rdma_->name());
    rdma_.reset();
    rdma_address = {};
  }
  address_ = pack(rdma_address, tcp_->address());
  owner_.link(rdma_.get(), this);
  owner_.link(tcp_.get(), this);
}

FallbackListener::~FallbackListener() {
  owner_.unlink(rdma_.get(), this);
  owner_.unlink(tcp_.get(), this);
}

std::string FallbackListener::name() const {
  return rdma_ ? fmt::format("{} (and {})", tcp_->name(), rdma_->name()) : tcp_->name();
}

}  // namespace imgcast::transport::fallback
