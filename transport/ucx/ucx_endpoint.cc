#include "transport/ucx/ucx_endpoint.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>

#include "transport/error.h"
#include "transport/log.h"
#include "transport/ucx/ucx_memory_region.h"

namespace imgcast::transport::ucx {

namespace {

void on_endpoint_error(void* arg, ucp_ep_h /*ep*/, ucs_status_t status) {
  auto* endpoint = static_cast<UcxEndpoint*>(arg);
  endpoint->fail({StatusCode::kClosed, fmt::format("peer {} failed: {}", endpoint->peer_name(),
                                                   ucs_status_string(status))});
}

// A control message's bytes stay alive until UCX has sent them.
struct PendingControl {
  std::vector<std::byte> bytes;
};

void on_control_sent(void* request, ucs_status_t /*status*/, void* user_data) {
  delete static_cast<PendingControl*>(user_data);
  ucp_request_free(request);
}

// The request of an active message (a write's notice, a control message). Eager only: the
// receiver's handler gets the whole message at once, never a rendezvous.
ucp_request_param_t eager_am_param(ucp_send_nbx_callback_t on_sent, void* user_data) {
  ucp_request_param_t param{};
  param.op_attr_mask =
      UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_FLAGS;
  param.cb.send = on_sent;
  param.user_data = user_data;
  param.flags = UCP_AM_SEND_FLAG_REPLY | UCP_AM_SEND_FLAG_EAGER;
  return param;
}

}  // namespace

UcxEndpoint::UcxEndpoint(std::shared_ptr<UcxCore> core, std::string peer_name)
    : core_(std::move(core)),
      peer_name_(std::move(peer_name)),
      slots_(core_->options.max_writes_in_flight) {}

void UcxEndpoint::open(ucp_ep_params_t params) {
  params.field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLER | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
  params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  params.err_handler.cb = on_endpoint_error;
  params.err_handler.arg = this;
  if (const ucs_status_t s = ucp_ep_create(core_->worker.get(), &params, &ep_); s != UCS_OK) {
    throw Error(StatusCode::kIoError, describe("ucp_ep_create", s) + " for " + peer_name_);
  }
  core_->endpoints[ep_] = this;
}

UcxEndpoint::~UcxEndpoint() {
  if (ep_ != nullptr) {
    ucp_request_param_t param{};
    param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    param.flags = UCP_EP_CLOSE_FLAG_FORCE;
    ucs_status_ptr_t request = ucp_ep_close_nbx(ep_, &param);
    // Progress until closed: the callbacks of operations still in flight run now, while this
    // object (their user data) is alive. Bounded, in case the peer never answers.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    if (UCS_PTR_IS_PTR(request)) {
      while (ucp_request_check_status(request) == UCS_INPROGRESS &&
             std::chrono::steady_clock::now() < deadline) {
        ucp_worker_progress(core_->worker.get());
      }
      ucp_request_free(request);
    }
    core_->endpoints.erase(ep_);
  }
  core_->queue.forget(this);
}

std::unique_ptr<RemoteRegion> UcxEndpoint::import_region(const RegionDescriptor& descriptor) {
  if (descriptor.kind != Kind::kUcx || descriptor.key.empty()) {
    throw Error(StatusCode::kInvalidArgument,
                fmt::format("{} sent a region descriptor the UCX transport cannot use ({})",
                            peer_name_, to_string(descriptor.kind)));
  }
  ucp_rkey_h rkey = nullptr;
  if (const ucs_status_t s = ucp_ep_rkey_unpack(ep_, descriptor.key.data(), &rkey); s != UCS_OK) {
    throw Error(StatusCode::kInvalidArgument, fmt::format("the rkey from {} does not unpack: {}",
                                                          peer_name_, ucs_status_string(s)));
  }
  return std::make_unique<UcxRemoteRegion>(descriptor, RkeyHandle(rkey));
}

Status UcxEndpoint::do_post_write(const WriteRequest& request) {
  IMGCAST_RETURN_IF_ERROR(failure_);  // latched: every later call returns it
  if (slots_used_ == slots_.size())
    return {StatusCode::kBusy, "write queue full"};
  WriteSlot* slot = nullptr;
  for (auto& s : slots_) {
    if (!s.used) {
      slot = &s;
      break;
    }
  }
  *slot = WriteSlot{this, request.cookie, 0, Status::ok(), {}, true};
  ++slots_used_;
  // REQUIRES (endpoint.h): source registered with this context, target imported here.
  const auto* source = static_cast<const UcxMemoryRegion*>(request.source);
  const auto* target = static_cast<const UcxRemoteRegion*>(request.target);

  ucp_request_param_t param{};
  param.op_attr_mask =
      UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_MEMH;
  param.cb.send = on_write_op_done;
  param.user_data = slot;
  param.memh = source->memh();
  const Status put =
      track(*slot,
            ucp_put_nbx(ep_, source->bytes().data() + request.source_offset, request.length,
                        target->descriptor().base + request.target_offset, target->rkey(), &param),
            "ucp_put_nbx");
  if (put.is_ok()) {
    // Without the fence UCX may deliver the notice before the put's bytes land.
    ucp_worker_fence(core_->worker.get());
    slot->notice = {std::uint64_t{request.imm} | (std::uint64_t{request.length} << 32),
                    request.notice};
    const ucp_request_param_t am = eager_am_param(on_write_op_done, slot);
    // A notice that cannot start is latched in slot->status like a put that cannot: this write
    // is accepted, and its WriteDone carries the failure.
    (void)track(*slot,
                ucp_am_send_nbx(ep_, kWriteNotice, slot->notice.data(), sizeof slot->notice,
                                nullptr, 0, &am),
                "ucp_am_send_nbx");
  }
  if (slot->pending == 0) {
    finish(*slot);  // everything completed at once (or failed to start)
  }
  core_->queue.signal();  // the next poll() must progress what was just posted
  return Status::ok();
}

Status UcxEndpoint::track(WriteSlot& slot, ucs_status_ptr_t op, const char* what) {
  if (op == nullptr)
    return Status::ok();  // completed immediately
  if (UCS_PTR_IS_ERR(op)) {
    slot.status = {StatusCode::kIoError, describe(what, UCS_PTR_STATUS(op)) + " to " + peer_name_};
    return slot.status;
  }
  ++slot.pending;
  return Status::ok();
}

void UcxEndpoint::on_write_op_done(void* request, ucs_status_t status, void* user_data) {
  auto* slot = static_cast<WriteSlot*>(user_data);
  if (status != UCS_OK && slot->status.is_ok()) {
    slot->status = {StatusCode::kIoError,
                    describe("write", status) + " to " + slot->owner->peer_name_};
  }
  ucp_request_free(request);
  if (--slot->pending == 0) {
    slot->owner->finish(*slot);
  }
}

void UcxEndpoint::finish(WriteSlot& slot) {
  core_->queue.complete(WriteDone{this, slot.cookie, slot.status});
  slot.used = false;
  --slots_used_;
}

Status UcxEndpoint::do_send_control(std::span<const std::byte> message) {
  IMGCAST_RETURN_IF_ERROR(failure_);  // latched: every later call returns it
  auto* pending = new PendingControl{{message.begin(), message.end()}};
  const ucp_request_param_t param = eager_am_param(on_control_sent, pending);
  const ucs_status_ptr_t op = ucp_am_send_nbx(ep_, kControlMessage, nullptr, 0,
                                              pending->bytes.data(), pending->bytes.size(), &param);
  if (op == nullptr) {
    delete pending;
  } else if (UCS_PTR_IS_ERR(op)) {
    delete pending;
    return {StatusCode::kIoError,
            describe("ucp_am_send_nbx", UCS_PTR_STATUS(op)) + " to " + peer_name_};
  }
  core_->queue.signal();
  return Status::ok();
}

void UcxEndpoint::fail(Status status) {
  if (!failure_.is_ok())
    return;
  log().debug("connection to {} failed: {}", peer_name_, status.to_string());
  failure_ = std::move(status);
  if (!failure_reported_) {
    failure_reported_ = true;
    core_->queue.complete(PeerFailed{this, failure_});
  }
}

void UcxEndpoint::on_notice(const void* header, std::size_t length) {
  std::array<std::uint64_t, 2> notice{};
  if (length != sizeof notice) {
    fail({StatusCode::kProtocolError, fmt::format("{} sent a malformed write notice", peer_name_)});
    return;
  }
  std::memcpy(notice.data(), header, sizeof notice);
  // The rkey cannot be bound to this endpoint, so a peer that learned it may have put the bytes
  // already; refusing its notice keeps the owner from counting them (memory_region.h).
  if (!core_->writable.any_allows(Endpoint::id())) {
    fail({StatusCode::kPermissionDenied,
          fmt::format("{} announced a write on a connection no region granted", peer_name_)});
    return;
  }
  core_->queue.complete(WriteArrived{this, static_cast<std::uint32_t>(notice[0]),
                                     static_cast<std::uint32_t>(notice[0] >> 32), notice[1]});
}

void UcxEndpoint::on_control(const void* data, std::size_t length) {
  // Eager only (ucx_context.cc), so UCX holds the bytes already; an untrusted peer's message is
  // still refused past the small bound before we copy it (endpoint.h).
  if (length > max_incoming_control_bytes()) {
    fail({StatusCode::kProtocolError,
          fmt::format("{} sent a {}-byte control message, over the {} allowed{}", peer_name_,
                      length, max_incoming_control_bytes(),
                      trusted() ? "" : " before authentication")});
    return;
  }
  const auto* bytes = static_cast<const std::byte*>(data);
  core_->queue.complete(ControlArrived{this, std::vector<std::byte>(bytes, bytes + length)});
}

}  // namespace imgcast::transport::ucx
