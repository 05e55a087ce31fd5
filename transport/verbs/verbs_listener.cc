#include "transport/verbs/verbs_listener.h"

#include <fmt/format.h>
#include <netinet/in.h>

#include <algorithm>

#include "transport/addr_info.h"
#include "transport/error.h"
#include "transport/host_port.h"
#include "transport/log.h"
#include "transport/verbs/verbs_endpoint.h"

namespace imgcast::transport::verbs {

VerbsListener::VerbsListener(std::shared_ptr<VerbsCore> core, const ListenOptions& options)
    : core_(std::move(core)) {
  const std::string where = fmt::format("{}:{}", options.bind_host, options.port);
  const AddrInfo info = resolve(options.bind_host, options.port, true);
  rdma_cm_id* raw = nullptr;
  if (rdma_create_id(core_->cm_events.get(), &raw, static_cast<CmHandler*>(this), RDMA_PS_TCP) !=
      0) {
    throw Error(StatusCode::kIoError, describe_errno("rdma_create_id", errno));
  }
  id_.reset(raw);
  if (rdma_bind_addr(id_.get(), info->ai_addr) != 0) {
    throw Error(StatusCode::kIoError, describe_errno("rdma_bind_addr", errno) + " on " + where +
                                          " (is it an address of the RDMA network?)");
  }
  if (rdma_listen(id_.get(), 64) != 0) {
    throw Error(StatusCode::kIoError, describe_errno("rdma_listen", errno) + " on " + where);
  }
  const std::uint16_t port = ntohs(rdma_get_src_port(id_.get()));
  name_ = HostPort{options.advertise_host.empty() ? options.bind_host : options.advertise_host,
                   options.advertise_port != 0 ? options.advertise_port : port}
              .to_string();
  const auto* text = reinterpret_cast<const std::byte*>(name_.data());
  address_.assign(text, text + name_.size());
}

VerbsListener::~VerbsListener() {
  // Requests not yet accepted are refused; their events are acked already, so this is safe.
  std::erase_if(core_->connect_requests, [this](const VerbsCore::ConnectRequest& r) {
    if (r.listener != this)
      return false;
    (void)rdma_reject(r.id, nullptr, 0);
    CmIdDeleter{}(r.id);
    return true;
  });
  core_->drop_accepting_of(this);
}

void VerbsListener::on_cm_event(const rdma_cm_event& event) {
  if (event.event == RDMA_CM_EVENT_CONNECT_REQUEST) {
    const auto* data = static_cast<const std::byte*>(event.param.conn.private_data);
    const std::size_t length = data == nullptr ? 0 : event.param.conn.private_data_len;
    // Copied now: the private data lives only until the event is acked.
    core_->connect_requests.push_back({this, event.id, {data, data + length}});
  } else if (event.event == RDMA_CM_EVENT_DEVICE_REMOVAL) {
    log().error("verbs listener {}: the RDMA device was removed", name_);
  }
}

void VerbsListener::accept(VerbsCore::ConnectRequest request) {
  const std::string peer = sockaddr_name(rdma_get_peer_addr(request.id));
  const auto params = ConnectParams::decode(request.private_data);
  if (!params) {
    log().warn("verbs listener {}: refused {}: not an imgcast verbs peer", name_, peer);
    (void)rdma_reject(request.id, nullptr, 0);
    CmIdDeleter{}(request.id);
    return;
  }
  std::unique_ptr<VerbsEndpoint> endpoint;
  try {
    // Destroying the id of a request not accepted refuses it, so a failure here is a refusal.
    endpoint = std::make_unique<VerbsEndpoint>(core_, CmIdHandle(request.id), peer);
  } catch (const Error& error) {
    log().warn("verbs listener {}: refused {}: {}", name_, peer, error.what());
    return;
  }
  if (!endpoint->set_peer(*params)) {
    log().warn("verbs listener {}: refused {}: unusable connection parameters", name_, peer);
    (void)rdma_reject(endpoint->id(), nullptr, 0);
    return;
  }
  const auto mine = endpoint->local_params().encode();
  rdma_conn_param param = connection_param(mine);
  if (rdma_accept(endpoint->id(), &param) != 0) {
    log().warn("verbs listener {}: {} for {}", name_, describe_errno("rdma_accept", errno), peer);
    return;
  }
  core_->accepting.push_back({this, std::move(endpoint)});
}

}  // namespace imgcast::transport::verbs
