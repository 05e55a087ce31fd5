#include "replicator/session/this_machine.h"

#include <netdb.h>
#include <sys/socket.h>

#include "replicator/unique_fd.h"

namespace imgcast::replicator {

bool is_this_machine(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), "0", &hints, &found) != 0) {
    return false;
  }
  bool local = false;
  for (const addrinfo* a = found; a != nullptr && !local; a = a->ai_next) {
    UniqueFd probe(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    local = probe.valid() && ::bind(probe.get(), a->ai_addr, a->ai_addrlen) == 0;
  }
  ::freeaddrinfo(found);
  return local;
}

}  // namespace imgcast::replicator
