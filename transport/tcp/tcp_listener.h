// TcpListener: a listening socket in the context's epoll set; each accepted connection becomes
// a TcpEndpoint delivered as a PeerAccepted completion.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "transport/context.h"
#include "transport/tcp/tcp_core.h"

namespace imgcast::transport::tcp {

class TcpListener final : public Listener, public EpollHandler {
 public:
  // Throws Error when it cannot resolve, bind or listen.
  TcpListener(std::shared_ptr<TcpCore> core, const ListenOptions& options);
  ~TcpListener() override;

  std::span<const std::byte> address() const noexcept override { return address_; }
  std::string name() const override { return name_; }
  void on_events(std::uint32_t events) override;

 private:
  std::shared_ptr<TcpCore> core_;
  UniqueFd socket_;
  std::string name_;
  std::vector<std::byte> address_;
};

}  // namespace imgcast::transport::tcp
