// VerbsEndpoint set-up, connection events and failure. The data path is in
// verbs_endpoint_io.cc.
#include "transport/verbs/verbs_endpoint.h"

#include <fmt/format.h>

#include <algorithm>

#include "transport/error.h"
#include "transport/log.h"
#include "transport/verbs/verbs_remote_region.h"

namespace imgcast::transport::verbs {

namespace {

constexpr std::uint32_t kBufferBytes = 8192;  // each send and receive buffer
constexpr std::uint32_t kCreditReserve = 2;   // credits only a bare credit return may use

std::uint32_t clamp_depth(std::uint64_t wanted, std::uint32_t low, std::uint32_t high) {
  return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(wanted, low, std::max(low, high)));
}

}  // namespace

VerbsEndpoint::VerbsEndpoint(std::shared_ptr<VerbsCore> core, CmIdHandle id, std::string peer_name)
    : core_(std::move(core)),
      id_(std::move(id)),
      peer_name_(std::move(peer_name)),
      // Each write takes two receives at the peer (its notice and its WRITE_WITH_IMM); the rest
      // leaves room for control fragments and credit returns.
      receive_depth_(clamp_depth(2 * core_->options.max_writes_in_flight + 16,
                                 ConnectParams::kMinReceiveDepth,
                                 std::min(core_->info.max_qp_wr, ConnectParams::kMaxReceiveDepth))),
      // A write is a notice plus one or more pieces; control and credits share the queue.
      send_depth_(
          clamp_depth(4 * core_->options.max_writes_in_flight + 64, 16, core_->info.max_qp_wr)),
      buffer_bytes_(kBufferBytes),
      buffers_(std::size_t{receive_depth_ + send_depth_} * kBufferBytes, core_->info.numa_node),
      out_(send_depth_, std::max<std::uint32_t>(1, std::min<std::uint32_t>(16, send_depth_ / 4)),
           {buffers_.data() + std::size_t{receive_depth_} * kBufferBytes,
            std::size_t{send_depth_} * kBufferBytes},
           kBufferBytes),
      slots_(std::max<std::size_t>(1, core_->options.max_writes_in_flight)),
      assembler_(kMaxUntrustedControlBytes) {
  if (id_->verbs == nullptr) {
    throw Error(StatusCode::kUnavailable,
                fmt::format("the route to {} goes over no RDMA device", peer_name_));
  }
  if (id_->verbs != core_->device) {
    throw Error(StatusCode::kUnavailable,
                fmt::format("the route to {} goes over RDMA device {}, but this context uses {}; "
                            "set {} to the device of that network",
                            peer_name_, ibv_get_device_name(id_->verbs->device), core_->info.name,
                            kDeviceEnvironmentVariable));
  }
  if (core_->info.port_pinned && id_->port_num != core_->info.port) {
    throw Error(
        StatusCode::kUnavailable,
        fmt::format("the route to {} goes over port {} of {}, not port {} as {} asks", peer_name_,
                    id_->port_num, core_->info.name, core_->info.port, kDeviceEnvironmentVariable));
  }
  id_->context = static_cast<CmHandler*>(this);
  buffer_mr_.reset(
      ibv_reg_mr(core_->pd.get(), buffers_.data(), buffers_.size(), IBV_ACCESS_LOCAL_WRITE));
  if (!buffer_mr_)
    throw Error(StatusCode::kIoError, describe_errno("ibv_reg_mr (message buffers)", errno));
  // One CQ for both queues, sized so it cannot overflow: every WR yields at most one CQE.
  cq_.reset(ibv_create_cq(core_->device, static_cast<int>(send_depth_ + receive_depth_), this,
                          core_->completions.get(), 0));
  if (!cq_)
    throw Error(StatusCode::kIoError, describe_errno("ibv_create_cq", errno));
  if (const int error = ibv_req_notify_cq(cq_.get(), 0); error != 0)
    throw Error(StatusCode::kIoError, describe_errno("ibv_req_notify_cq", error));
  ibv_qp_init_attr attr{};
  attr.send_cq = cq_.get();
  attr.recv_cq = cq_.get();
  attr.qp_type = IBV_QPT_RC;
  attr.sq_sig_all = 0;  // selective signalling (send_tracker.h)
  attr.cap.max_send_wr = send_depth_;
  attr.cap.max_recv_wr = receive_depth_;
  attr.cap.max_send_sge = 1;
  attr.cap.max_recv_sge = 1;
  if (rdma_create_qp(id_.get(), core_->pd.get(), &attr) != 0) {
    throw Error(StatusCode::kIoError,
                describe_errno("rdma_create_qp", errno) + " for " + peer_name_);
  }
  qp_ = CmQpHandle(id_->qp, CmQpDeleter{id_.get()});
  for (std::uint32_t i = 0; i < slots_.size(); ++i)
    free_slots_.push_back(static_cast<std::uint32_t>(slots_.size()) - 1 - i);
  // Every receive is posted before the connection exists, so the credits the peer starts with
  // (our receive depth) are real from its first SEND.
  for (std::uint32_t i = 0; i < receive_depth_; ++i) {
    if (!post_receive(i))
      throw Error(failure_);
  }
  core_->endpoints.push_back(this);
}

VerbsEndpoint::~VerbsEndpoint() {
  std::erase(core_->endpoints, this);
  core_->queue.forget(this);
  if (qp_ && (state_ == State::kEstablished || state_ == State::kConnecting)) {
    // Tells the peer at once, rather than by its retries running out.
    (void)rdma_disconnect(id_.get());
  }
}

std::unique_ptr<RemoteRegion> VerbsEndpoint::import_region(const RegionDescriptor& descriptor) {
  return std::make_unique<VerbsRemoteRegion>(descriptor);
}

rdma_conn_param connection_param(std::span<const std::byte> private_data) noexcept {
  rdma_conn_param param{};
  param.private_data = private_data.data();
  param.private_data_len = static_cast<std::uint8_t>(private_data.size());
  param.responder_resources = 0;  // no RDMA READ either way
  param.initiator_depth = 0;
  // Credits make RNR impossible; should one happen all the same (a peer off the protocol),
  // fail with a clear status after a few retries rather than retry forever (7).
  param.rnr_retry_count = 6;
  return param;
}

ConnectParams VerbsEndpoint::local_params() const noexcept {
  return {receive_depth_, buffer_bytes_};
}

bool VerbsEndpoint::set_peer(const ConnectParams& peer) {
  if (peer.receive_depth <= kCreditReserve)
    return false;
  // A bare credit return is due once a quarter of our receives is owed: few extra SENDs, and
  // never so late that the peer, stopped at its reserve, waits for it (credit_ledger.h).
  const std::uint32_t threshold = std::max(1u, (receive_depth_ - kCreditReserve) / 4);
  out_.start(CreditLedger(peer.receive_depth, kCreditReserve, threshold),
             peer.receive_buffer_bytes);
  return true;
}

void VerbsEndpoint::start_connecting(std::chrono::steady_clock::time_point deadline) {
  state_ = State::kConnecting;
  deadline_ = deadline;
}

void VerbsEndpoint::check_deadline(std::chrono::steady_clock::time_point now) {
  if (state_ == State::kConnecting && now > deadline_) {
    fail({StatusCode::kTimeout, fmt::format("connecting to {} timed out", peer_name_)});
  }
}

void VerbsEndpoint::established() {
  state_ = State::kEstablished;
  pump();  // what was posted while connecting
}

void VerbsEndpoint::on_cm_event(const rdma_cm_event& event) {
  switch (event.event) {
    case RDMA_CM_EVENT_ESTABLISHED:
      if (state_ == State::kConnecting) {
        // The accept's private data: the peer's receive depth and buffer size.
        const auto* data = static_cast<const std::byte*>(event.param.conn.private_data);
        const auto params = ConnectParams::decode(
            {data, data == nullptr ? std::size_t{0} : event.param.conn.private_data_len});
        if (!params || !set_peer(*params)) {
          fail(
              {StatusCode::kProtocolError,
               fmt::format("{} accepted without valid imgcast connection parameters", peer_name_)});
          return;
        }
        established();
      } else if (state_ == State::kAccepting) {
        established();
        core_->on_accept_established(this);
      }
      return;
    case RDMA_CM_EVENT_REJECTED:
      fail({StatusCode::kClosed,
            fmt::format("connection to {} refused (nobody listens there, or it refused us)",
                        peer_name_)});
      return;
    case RDMA_CM_EVENT_UNREACHABLE:
    case RDMA_CM_EVENT_CONNECT_ERROR:
      fail({StatusCode::kClosed,
            fmt::format("cannot connect to {}: {}", peer_name_, rdma_event_str(event.event))});
      return;
    case RDMA_CM_EVENT_DISCONNECTED:
      fail({StatusCode::kClosed, fmt::format("peer {} disconnected", peer_name_)});
      return;
    case RDMA_CM_EVENT_DEVICE_REMOVAL:
      fail({StatusCode::kIoError,
            fmt::format("RDMA device {} was removed under the connection to {}", core_->info.name,
                        peer_name_)});
      return;
    default:
      return;  // TIMEWAIT_EXIT and the like: nothing to do
  }
}

void VerbsEndpoint::fail(Status status) {
  if (!failure_.is_ok())
    return;
  const bool handed_out = state_ != State::kAccepting;
  log().debug("verbs: endpoint {} failed: {}", peer_name_, status.to_string());
  failure_ = std::move(status);
  state_ = State::kFailed;
  if (qp_) {
    // Stop the NIC: nothing more leaves; what is outstanding is flushed with errors, ignored.
    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_ERR;
    (void)ibv_modify_qp(qp_.get(), &attr, IBV_QP_STATE);
  }
  out_.clear();
  notices_.clear();
  if (!handed_out) {
    core_->drop_accepting(this);  // nobody knows this endpoint: no completions for it
    return;
  }
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].used) {
      slots_[i].used = false;
      free_slots_.push_back(i);
      core_->queue.complete(WriteDone{this, slots_[i].cookie, failure_});
    }
  }
  core_->queue.complete(PeerFailed{this, failure_});
}

}  // namespace imgcast::transport::verbs
