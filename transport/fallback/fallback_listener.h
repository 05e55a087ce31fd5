// FallbackListener: the composite's listener: a TCP listener always, an RDMA one when that
// backend could listen. Its address carries both (TwoHalves), so each peer picks the best one it
// can use itself; a node without RDMA publishes the TCP half alone.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "transport/endpoint.h"

namespace imgcast::transport::fallback {

class FallbackContext;

class FallbackListener final : public Listener {
 public:
  // `rdma` may be null.
  FallbackListener(FallbackContext& owner, std::unique_ptr<Listener> rdma,
                   std::unique_ptr<Listener> tcp);
  ~FallbackListener() override;

  std::span<const std::byte> address() const noexcept override { return address_; }
  std::string name() const override;

 private:
  FallbackContext& owner_;
  std::unique_ptr<Listener> rdma_;
  std::unique_ptr<Listener> tcp_;
  std::vector<std::byte> address_;
};

}  // namespace imgcast::transport::fallback
