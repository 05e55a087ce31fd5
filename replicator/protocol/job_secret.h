// JobSecret: the one line the root gives each agent (on standard input, or in a step launcher's
// environment; never argv, never a log): the job id, the job key and the data transport.
//   "IMGCAST1 <job id, 32 hex> <job key, 64 hex> <data transport>\n"
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "replicator/protocol/auth.h"
#include "transport/kind.h"

namespace imgcast::replicator {

struct JobSecret {
  JobId job{};
  JobKey key;
  transport::Kind transport = transport::Kind::kTcp;
  // Written "<kind>+tcp": links whose RDMA setup fails fall back to TCP (--transport auto).
  bool transport_fallback = false;

  std::string to_line() const;
  // nullopt for anything malformed.
  static std::optional<JobSecret> parse(std::string_view line);
};

}  // namespace imgcast::replicator
