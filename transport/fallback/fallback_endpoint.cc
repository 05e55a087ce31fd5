#include "transport/fallback/fallback_endpoint.h"

#include <fmt/format.h>

#include "transport/error.h"
#include "transport/fallback/fallback_context.h"
#include "transport/fallback/fallback_region.h"

namespace imgcast::transport::fallback {

FallbackEndpoint::FallbackEndpoint(FallbackContext& owner, std::unique_ptr<Endpoint> inner)
    : owner_(owner), inner_(std::move(inner)), kind_(inner_->kind()), name_(inner_->peer_name()) {
  owner_.link(inner_.get(), this);
}

FallbackEndpoint::~FallbackEndpoint() {
  owner_.unlink(inner_.get(), this);
  owner_.forget(this);  // no completion may outlive the endpoint it names
  // inner_ goes next, and with it the inner context's completions that name it.
}

std::pair<std::unique_ptr<Endpoint>, FallbackEndpoint::Probation> FallbackEndpoint::leave_rdma() {
  Probation probation = std::move(*probation_);
  probation_.reset();
  owner_.unlink(inner_.get(), this);
  return {std::move(inner_), std::move(probation)};
}

void FallbackEndpoint::adopt(std::unique_ptr<Endpoint> tcp) {
  inner_ = std::move(tcp);
  kind_ = inner_->kind();
  name_ = inner_->peer_name();
  owner_.link(inner_.get(), this);
  if (trusted())
    inner_->trust();
}

std::unique_ptr<RemoteRegion> FallbackEndpoint::import_region(const RegionDescriptor& descriptor) {
  if (inner_ == nullptr) {
    throw Error(failure_);
  }
  return std::make_unique<FallbackRemoteRegion>(
      descriptor, inner_->import_region(inner_descriptor(descriptor, kind_)));
}

Status FallbackEndpoint::do_post_write(const WriteRequest& request) {
  if (inner_ == nullptr)
    return failure_;
  // Every region and remote region of this context is one of ours; anything else is a caller's
  // mistake, refused before it could reach a backend.
  const auto* source = dynamic_cast<const FallbackRegion*>(request.source);
  const auto* target = dynamic_cast<const FallbackRemoteRegion*>(request.target);
  if (source == nullptr || target == nullptr) {
    return {StatusCode::kInvalidArgument, "write regions do not belong to this context"};
  }
  const MemoryRegion* inner_source = source->half(kind_);
  if (inner_source == nullptr) {
    return {StatusCode::kUnavailable,
            fmt::format("the source region has no {} registration", to_string(kind_))};
  }
  // A write commits the link to its backend: its bytes could not be taken back for a resend.
  end_probation();
  WriteRequest inner = request;
  inner.source = inner_source;
  inner.target = &target->inner();
  return inner_->post_write(inner);
}

Status FallbackEndpoint::do_send_control(std::span<const std::byte> message) {
  if (inner_ == nullptr)
    return failure_;
  if (probation_) {
    // Kept for a resend over TCP; a link that says more than a handshake's opening before the
    // peer answers is not a first contact any more.
    if (probation_->sent_bytes + message.size() > kMaxUntrustedControlBytes) {
      end_probation();
    } else {
      probation_->sent.emplace_back(message.begin(), message.end());
      probation_->sent_bytes += message.size();
    }
  }
  return inner_->send_control(message);
}

void FallbackEndpoint::on_trusted() noexcept {
  if (inner_)
    inner_->trust();
}

}  // namespace imgcast::transport::fallback
