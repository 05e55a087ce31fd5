// Availability: whether a backend can run on this machine, and why (not). What the factory's
// probe() and each backend's own probe answer; what `imgcast probe` and --transport auto report.
#pragma once

#include <string>

namespace imgcast::transport {

struct Availability {
  bool usable = false;
  std::string reason;  // why not, or what was found
};

}  // namespace imgcast::transport
