// UcxEndpoint: one UCX peer. A write is a ucp_put_nbx from the source region's mapping straight
// into the peer's mapped region, then ucp_worker_fence, then an active message carrying
// {imm, length, notice}. The fence orders the notice after the put at the target, so when the
// notice's handler runs the bytes are in place (UCP has no RDMA-write-with-immediate).
// A write completes (WriteDone) when both operations completed locally; the source is then
// reusable. Writes in flight live in a fixed slot table allocated once: no allocation per write.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "transport/endpoint.h"
#include "transport/ucx/ucx_core.h"

namespace imgcast::transport::ucx {

class UcxEndpoint final : public Endpoint {
 public:
  UcxEndpoint(std::shared_ptr<UcxCore> core, std::string peer_name);
  ~UcxEndpoint() override;  // closes the ucp endpoint, progressing until it is closed

  // Creates the ucp endpoint; adds the error handler. Throws Error.
  void open(ucp_ep_params_t params);
  ucp_ep_h ep() const noexcept { return ep_; }

  std::unique_ptr<RemoteRegion> import_region(const RegionDescriptor& descriptor) override;
  const std::string& peer_name() const noexcept override { return peer_name_; }
  Kind kind() const noexcept override { return Kind::kUcx; }

  // Latches the first failure, reports PeerFailed once. Pending operations complete through
  // their own callbacks (UCX fails them when the endpoint fails or closes).
  void fail(Status status);
  void on_notice(const void* header, std::size_t length);
  void on_control(const void* data, std::size_t length);

 private:
  struct WriteSlot {
    UcxEndpoint* owner = nullptr;
    std::uint64_t cookie = 0;
    int pending = 0;  // operations (put, notice) not yet completed
    Status status;
    std::array<std::uint64_t, 2> notice{};  // the active message header; lives until done
    bool used = false;
  };

  Status do_post_write(const WriteRequest& request) override;
  Status do_send_control(std::span<const std::byte> message) override;
  static void on_write_op_done(void* request, ucs_status_t status, void* user_data);
  Status track(WriteSlot& slot, ucs_status_ptr_t op, const char* what);
  void finish(WriteSlot& slot);

  std::shared_ptr<UcxCore> core_;
  std::string peer_name_;
  ucp_ep_h ep_ = nullptr;
  Status failure_;
  bool failure_reported_ = false;
  std::vector<WriteSlot> slots_;
  std::size_t slots_used_ = 0;
};

}  // namespace imgcast::transport::ucx
