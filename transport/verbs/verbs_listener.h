// VerbsListener: an rdma_cm id listening on an IP address of the RDMA network (IPoIB or the
// RoCE interface). A connect request is accepted after its event is acked (VerbsCore); the
// connection becomes a VerbsEndpoint, handed out as PeerAccepted when it is ESTABLISHED. Its
// address() is "host:port" text, like TCP's and UCX's (connect_params.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "transport/context.h"
#include "transport/verbs/verbs_core.h"

namespace imgcast::transport::verbs {

class VerbsListener final : public Listener, public CmHandler {
 public:
  // Throws Error when it cannot resolve, bind or listen.
  VerbsListener(std::shared_ptr<VerbsCore> core, const ListenOptions& options);
  ~VerbsListener() override;  // refuses pending requests, drops connections not yet handed out

  std::span<const std::byte> address() const noexcept override { return address_; }
  std::string name() const override { return name_; }
  void on_cm_event(const rdma_cm_event& event) override;
  // Sets up and accepts one connect request (its event acked); refuses it on any failure.
  void accept(VerbsCore::ConnectRequest request);

 private:
  std::shared_ptr<VerbsCore> core_;  // first: the event channel outlives the id
  CmIdHandle id_;
  std::string name_;
  std::vector<std::byte> address_;
};

}  // namespace imgcast::transport::verbs
