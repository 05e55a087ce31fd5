// Whether a host name is this machine: the root must be the first host of the job's list.
#pragma once

#include <string>

namespace imgcast::replicator {

// True when `host` resolves to an address of this machine (binding a socket to it succeeds; no
// packet is sent).
bool is_this_machine(const std::string& host);

// True for a literal loopback address (127.0.0.0/8, ::1): no lookup. Agents on such "hosts" all
// connect from 127.0.0.1, so admission must not treat them as one address sending many.
bool is_loopback_literal(const std::string& host);

}  // namespace imgcast::replicator
