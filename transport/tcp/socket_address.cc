#include "transport/tcp/socket_address.h"

#include <sys/socket.h>

#include "transport/host_port.h"

namespace imgcast::transport::tcp {

std::string peer_name_of(int socket) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getpeername(socket, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return "unknown peer";
  }
  return sockaddr_name(reinterpret_cast<const sockaddr*>(&address));
}

}  // namespace imgcast::transport::tcp
