// The TCP backend's socket-specific address helper: the name of a connected socket's peer, for
// its endpoints' messages. The address text itself (HostPort), its parser and name resolution
// are shared by every backend and live beside the interface (transport/host_port.h,
// transport/addr_info.h).
#pragma once

#include <string>

namespace imgcast::transport::tcp {

// "10.0.0.2:4711" for a connected socket's peer; "unknown peer" when the kernel cannot say.
std::string peer_name_of(int socket);

}  // namespace imgcast::transport::tcp
