// FallbackEndpoint: one link of the fallback composite, carried by an endpoint of one of its two
// inner contexts. A link connected over RDMA is on probation until the peer's first message:
// if the RDMA endpoint fails before that, or stays silent past its deadline, the composite
// connects to the peer's TCP address instead and sends again what this side sent so far (the
// handshake's opening), so the owner sees one link that just works. Once the peer was heard
// from, the link stays on its backend and fails like any other.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "transport/endpoint.h"

namespace imgcast::transport::fallback {

class FallbackContext;

class FallbackEndpoint final : public Endpoint {
 public:
  using Clock = std::chrono::steady_clock;

  // What a move to TCP needs while the link is on probation.
  struct Probation {
    std::vector<std::byte> tcp_address;
    std::chrono::milliseconds connect_timeout{0};
    Clock::time_point deadline{};
    std::vector<std::vector<std::byte>> sent;  // control messages sent so far, oldest first
    std::size_t sent_bytes = 0;
  };

  // `inner` carries the link (it may be replaced only while on probation).
  FallbackEndpoint(FallbackContext& owner, std::unique_ptr<Endpoint> inner);
  ~FallbackEndpoint() override;

  std::unique_ptr<RemoteRegion> import_region(const RegionDescriptor& descriptor) override;
  const std::string& peer_name() const noexcept override { return name_; }
  // The backend of the inner endpoint that carries the link now.
  Kind kind() const noexcept override { return kind_; }

  // Null once the link failed for good.
  Endpoint* inner() const noexcept { return inner_.get(); }

  void start_probation(Probation probation) { probation_ = std::move(probation); }
  bool on_probation() const noexcept { return probation_.has_value(); }
  const Probation* probation() const noexcept { return probation_ ? &*probation_ : nullptr; }
  // The peer was heard from: the link stays on its backend.
  void end_probation() noexcept { probation_.reset(); }
  // For the move to TCP: ends the probation and hands out the RDMA endpoint (to be destroyed
  // once the batch of completions that may name it is done) and what the move needs.
  std::pair<std::unique_ptr<Endpoint>, Probation> leave_rdma();
  // The link runs on `tcp` from now on.
  void adopt(std::unique_ptr<Endpoint> tcp);
  // The link failed for good (the move to TCP failed): every later call returns `status`.
  void fail(Status status) { failure_ = std::move(status); }

 private:
  Status do_post_write(const WriteRequest& request) override;
  Status do_send_control(std::span<const std::byte> message) override;
  void on_trusted() noexcept override;

  FallbackContext& owner_;
  std::unique_ptr<Endpoint> inner_;
  Kind kind_;
  std::string name_;
  Status failure_;
  std::optional<Probation> probation_;
};

}  // namespace imgcast::transport::fallback
