#include "transport/verbs/verbs_core.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "transport/verbs/verbs_endpoint.h"
#include "transport/verbs/verbs_listener.h"

namespace imgcast::transport::verbs {

std::string DeviceInfo::describe() const {
  return numa_node >= 0 ? fmt::format("{} port {} (NUMA node {})", name, port, numa_node)
                        : fmt::format("{} port {} (NUMA node unknown)", name, port);
}

std::string describe_errno(const char* what, int error) {
  return fmt::format("{} failed: {}", what, std::strerror(error));
}

VerbsCore::VerbsCore() = default;
VerbsCore::~VerbsCore() = default;

void VerbsCore::on_accept_established(VerbsEndpoint* endpoint) {
  const auto it = std::find_if(accepting.begin(), accepting.end(),
                               [&](const Accepting& a) { return a.endpoint.get() == endpoint; });
  if (it == accepting.end())
    return;
  Accepting accepted = std::move(*it);
  accepting.erase(it);
  queue.complete(PeerAccepted{accepted.listener, std::move(accepted.endpoint)});
}

void VerbsCore::drop_accepting(VerbsEndpoint* endpoint) {
  const auto it = std::find_if(accepting.begin(), accepting.end(),
                               [&](const Accepting& a) { return a.endpoint.get() == endpoint; });
  if (it == accepting.end())
    return;
  graveyard.push_back(std::move(it->endpoint));  // inside an event handler: destroy after ack
  accepting.erase(it);
}

void VerbsCore::drop_accepting_of(const VerbsListener* listener) {
  // Called from the listener's destructor, outside any event handler: destroy at once.
  std::erase_if(accepting, [&](const Accepting& a) { return a.listener == listener; });
}

}  // namespace imgcast::transport::verbs
