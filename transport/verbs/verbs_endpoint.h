// VerbsEndpoint: one RC queue pair to one peer, made through librdmacm. A write is a notice SEND
// then RDMA WRITEs of its pieces, the last one WITH_IMM (rdma_wire.h has the protocol script
// and the ordering argument); a control message is SENDs of fragments. Everything posted goes
// through one FIFO (outbound_queue.h), drained into the send queue as credits, send-queue
// slots and send buffers allow, so the order the caller posted in is the order on the wire. The
// endpoint owns its CQ (one per endpoint, all on the context's one completion channel), its QP and
// its registered send and receive buffers.
//
// Life: connecting (active side, until ESTABLISHED) or accepting (passive side, held by the
// core until ESTABLISHED, then handed out as PeerAccepted) -> established -> failed. Posts made
// before ESTABLISHED wait in the backlog. The first failure is latched: every write in flight
// completes with it, PeerFailed is reported once, and the QP is moved to the error state.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "transport/endpoint.h"
#include "transport/verbs/connect_params.h"
#include "transport/verbs/control_assembler.h"
#include "transport/verbs/credit_ledger.h"
#include "transport/verbs/outbound_queue.h"
#include "transport/verbs/rdma_wire.h"
#include "transport/verbs/verbs_core.h"
#include "transport/verbs/write_plan.h"

namespace imgcast::transport::verbs {

class VerbsEndpoint final : public Endpoint, public CmHandler {
 public:
  // Takes a cm id whose route is resolved (active) or that came with a connect request
  // (passive); makes the CQ and QP and posts every receive. Throws Error.
  VerbsEndpoint(std::shared_ptr<VerbsCore> core, CmIdHandle id, std::string peer_name);
  ~VerbsEndpoint() override;  // disconnects; drops its queued completions

  std::unique_ptr<RemoteRegion> import_region(const RegionDescriptor& descriptor) override;
  const std::string& peer_name() const noexcept override { return peer_name_; }
  Kind kind() const noexcept override { return Kind::kVerbs; }

  rdma_cm_id* id() const noexcept { return id_.get(); }
  ConnectParams local_params() const noexcept;
  // The peer's params, from the private data: sets up the credits. False when they are out of
  // what we can talk to (the endpoint then fails).
  bool set_peer(const ConnectParams& peer);
  // Active side: a connect that must be ESTABLISHED by `deadline` or fail.
  void start_connecting(std::chrono::steady_clock::time_point deadline);
  void check_deadline(std::chrono::steady_clock::time_point now);
  void on_cm_event(const rdma_cm_event& event) override;
  // Drains the CQ (only once established: completions must not precede PeerAccepted), then
  // posts what the backlog allows.
  void progress();
  // Latches the first failure (see the file comment).
  void fail(Status status);

 private:
  enum class State { kConnecting, kAccepting, kEstablished, kFailed };
  struct WriteSlot {
    std::uint64_t cookie = 0;
    bool used = false;
  };
  static constexpr std::uint64_t kReceiveBit = 1ULL << 63;  // wr_id of a receive: bit | buffer

  Status do_post_write(const WriteRequest& request) override;
  Status do_send_control(std::span<const std::byte> message) override;
  void established();
  void pump();
  bool post(const PlannedWr& wr);  // ibv_post_send; false (and failed) on error
  bool post_receive(std::uint32_t buffer);
  void on_completion(const ibv_wc& wc);
  void on_receive(std::uint32_t buffer, std::uint32_t bytes);
  void on_write_with_imm(std::uint32_t buffer, std::uint32_t imm);
  std::byte* receive_buffer(std::uint32_t i) const noexcept;
  std::byte* send_buffer(std::uint32_t i) const noexcept;
  ibv_sge buffer_sge(std::byte* at, std::size_t bytes) const noexcept;

  // Members in creation order; destruction runs in reverse: QP, CQ, buffer MR, buffers, id.
  std::shared_ptr<VerbsCore> core_;
  CmIdHandle id_;
  std::string peer_name_;
  std::uint32_t receive_depth_;
  std::uint32_t send_depth_;
  std::uint32_t buffer_bytes_;
  NumaBuffer buffers_;  // receive_depth_ receive buffers, then send_depth_ send buffers
  MrHandle buffer_mr_;
  CqHandle cq_;
  CmQpHandle qp_;

  State state_ = State::kAccepting;
  std::chrono::steady_clock::time_point deadline_{};
  Status failure_;
  OutboundQueue out_;
  std::vector<WriteSlot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::deque<WireMessage> notices_;  // arrived notices waiting for their WRITE_WITH_IMM
  ControlAssembler assembler_;
  std::vector<SendTag> completed_;  // scratch for OutboundQueue::on_send_completion
  std::vector<WrPiece> pieces_;     // scratch for plan_write
};

// What both sides pass to rdma_cm, the active one to rdma_connect and the passive one to
// rdma_accept: `private_data` (our encoded ConnectParams) and the RC settings they share. It
// points into `private_data`, which must outlive that call.
rdma_conn_param connection_param(std::span<const std::byte> private_data) noexcept;

}  // namespace imgcast::transport::verbs
