#include "transport/ucx/ucx_listener.h"

#include <fmt/format.h>
#include <netinet/in.h>

#include "transport/addr_info.h"
#include "transport/error.h"
#include "transport/host_port.h"
#include "transport/log.h"
#include "transport/ucx/ucx_endpoint.h"

namespace imgcast::transport::ucx {

UcxListener::UcxListener(std::shared_ptr<UcxCore> core, const ListenOptions& options)
    : core_(std::move(core)) {
  const AddrInfo info = resolve(options.bind_host, options.port, true);
  ucp_listener_params_t params{};
  params.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER;
  params.sockaddr.addr = info->ai_addr;
  params.sockaddr.addrlen = info->ai_addrlen;
  params.conn_handler.cb = on_connection;
  params.conn_handler.arg = this;
  ucp_listener_h listener = nullptr;
  if (const ucs_status_t s = ucp_listener_create(core_->worker.get(), &params, &listener);
      s != UCS_OK) {
    throw Error(StatusCode::kIoError,
                describe("ucp_listener_create", s) +
                    fmt::format(" on {}:{}", options.bind_host, options.port));
  }
  listener_.reset(listener);
  ucp_listener_attr_t attr{};
  attr.field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR;
  if (const ucs_status_t s = ucp_listener_query(listener, &attr); s != UCS_OK) {
    throw Error(StatusCode::kIoError, describe("ucp_listener_query", s));
  }
  const std::uint16_t port =
      ntohs(attr.sockaddr.ss_family == AF_INET
                ? reinterpret_cast<const sockaddr_in*>(&attr.sockaddr)->sin_port
                : reinterpret_cast<const sockaddr_in6*>(&attr.sockaddr)->sin6_port);
  name_ = HostPort{options.advertise_host.empty() ? options.bind_host : options.advertise_host,
                   options.advertise_port != 0 ? options.advertise_port : port}
              .to_string();
  const auto* text = reinterpret_cast<const std::byte*>(name_.data());
  address_.assign(text, text + name_.size());
}

void UcxListener::on_connection(ucp_conn_request_h request, void* arg) {
  auto* self = static_cast<UcxListener*>(arg);
  std::string peer = "unknown UCX peer";
  ucp_conn_request_attr_t attr{};
  attr.field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR;
  if (ucp_conn_request_query(request, &attr) == UCS_OK) {
    peer = sockaddr_name(reinterpret_cast<const sockaddr*>(&attr.client_address));
  }
  auto endpoint = std::make_unique<UcxEndpoint>(self->core_, peer);
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST;
  params.conn_request = request;
  try {
    endpoint->open(params);
  } catch (const Error& error) {
    log().warn("UCX listener {}: refused {}: {}", self->name_, peer, error.what());
    return;
  }
  self->core_->queue.complete(PeerAccepted{self, std::move(endpoint)});
}

}  // namespace imgcast::transport::ucx
