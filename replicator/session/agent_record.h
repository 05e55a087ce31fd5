// AgentRecord: one node as the root's session sees it, from launch to its outcome. Index = rank;
// [0] is the root itself.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "replicator/errors.h"
#include "replicator/image/integrity.h"
#include "replicator/protocol/message_seal.h"
#include "transport/endpoint.h"

namespace imgcast::replicator {

struct AgentRecord {
  // In order: a later state means every earlier step is done (kFailed: it stopped somewhere).
  enum class State { kLaunched, kJoined, kProbed, kReady, kDone, kFailed };
  int rank = 0;
  std::string host;
  std::string destination;
  State state = State::kLaunched;
  std::unique_ptr<transport::Endpoint> control;  // after it proved it holds the job key
  std::optional<MessageSeal> seal;               // every message with it, both ways
  std::vector<std::byte> data_address;           // from its Join
  std::string failure;
  ExitCode failure_code = ExitCode::kTransferFailed;
  std::optional<ImageDigest> cached;  // its copy is this image already (from its Probed)
  bool skipped = false;               // ... and it was left out of the transfer
  bool dropped = false;               // failed before the plan: not in the transfer at all
  double seconds = 0;
  std::uint64_t bytes_verified = 0;  // from its Progress reports
  int place = -1;                    // its place in the transfer's tree, -1: none
  std::uint32_t refetched = 0;       // corrupt chunks it fetched again (from its Result)
  std::uint8_t link_kinds = 0;       // the backends its parent links ran on (from its Result)

  bool finished() const noexcept { return state == State::kDone || state == State::kFailed; }
};

}  // namespace imgcast::replicator
