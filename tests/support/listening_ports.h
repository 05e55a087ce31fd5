// Test support: which TCP ports a process tree listens on (a root and the agents it started),
// read from /proc, so a test can knock on every one of them like a port scanner would.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace imgcast::test {

struct ListeningPort {
  pid_t pid = -1;
  std::uint16_t port = 0;
  // The IPv4 address it is bound to, "127.0.0.1" for every address (or an IPv6 socket).
  std::string host = "127.0.0.1";
};

// Every TCP port (IPv4 or IPv6) in LISTEN state held by `root` or one of its descendants.
std::vector<ListeningPort> listening_ports_of_tree(pid_t root);

}  // namespace imgcast::test
