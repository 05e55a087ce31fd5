// UcxListener: a UCP client-server listener on a socket address. Each connection request becomes
// a UcxEndpoint delivered as PeerAccepted. Its address() is "host:port" text, like TCP's.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "transport/context.h"
#include "transport/ucx/ucx_core.h"

namespace imgcast::transport::ucx {

class UcxListener final : public Listener {
 public:
  // Throws Error when UCX cannot listen there.
  UcxListener(std::shared_ptr<UcxCore> core, const ListenOptions& options);

  std::span<const std::byte> address() const noexcept override { return address_; }
  std::string name() const override { return name_; }

 private:
  static void on_connection(ucp_conn_request_h request, void* arg);

  std::shared_ptr<UcxCore> core_;  // first: the worker outlives the listener
  ListenerHandle listener_;
  std::string name_;
  std::vector<std::byte> address_;
};

}  // namespace imgcast::transport::ucx
