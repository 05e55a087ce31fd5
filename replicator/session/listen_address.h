// Where a node's listeners bind: the address of the name it goes by in the job, so that its
// control and data ports take connections only on the network the job uses, not on every
// interface of the host (a login network, a container bridge, a management VLAN).
#pragma once

#include <memory>
#include <string>

#include "transport/context.h"

namespace imgcast::replicator {

// Every address ("0.0.0.0"): --bind any.
inline constexpr const char* kAnyAddress = "0.0.0.0";

// The numeric address to bind for a host known in the job as `name`: the first address `name`
// resolves to that is this machine's. kAnyAddress when `any` is set, when `name` is not this
// machine's, and when `name` resolves to a loopback address although it is not itself a loopback
// name or literal (Debian's "127.0.1.1 HOSTNAME" line: the other nodes reach it elsewhere).
std::string bind_address_for(const std::string& name, bool any);

// context.listen(options), and when that fails on a specific address (an RDMA device that does
// not serve that interface), once more on every address, logged.
std::unique_ptr<transport::Listener> listen_on(transport::Context& context,
                                               transport::ListenOptions options);

}  // namespace imgcast::replicator
