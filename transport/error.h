// Error: what setup calls (open a device, register memory, listen, connect) throw.
// Its what() is a one-line reason a user can act on.
#pragma once

#include <stdexcept>

#include "transport/status.h"

namespace imgcast::transport {

class Error : public std::runtime_error {
 public:
  explicit Error(Status status)
      : std::runtime_error(status.message()), status_(std::move(status)) {}
  Error(StatusCode code, std::string message) : Error(Status(code, std::move(message))) {}
  const Status& status() const noexcept { return status_; }

 private:
  Status status_;
};

}  // namespace imgcast::transport
