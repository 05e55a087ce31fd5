// RootSession's control channel: agents are admitted (the one Admission path), then every
// message an agent sends is checked against its state before anything acts on it.
#include <fmt/format.h>

#include <algorithm>

#include "replicator/image/destination.h"
#include "replicator/log.h"
#include "replicator/session/root_session.h"

namespace imgcast::replicator {

namespace tp = transport;

void RootSession::on_control_event(tp::Completion& event) {
  if (control_admission_->handle(event)) {
    admit_agents();  // at once: a later event of this batch may come from the same agent
    return;
  }
  tp::Endpoint* from = nullptr;
  if (auto* arrived = std::get_if<tp::ControlArrived>(&event)) {
    from = arrived->from;
  } else if (auto* failed = std::get_if<tp::PeerFailed>(&event)) {
    from = failed->peer;
  }
  const std::uint64_t tag = from != nullptr ? from->user_tag() : 0;
  if (tag == 0 || tag >= agents_.size() || agents_[tag].control.get() != from) {
    return;  // nobody's: a connection the admission already let go of
  }
  AgentRecord& agent = agents_[tag];
  if (auto* arrived = std::get_if<tp::ControlArrived>(&event)) {
    const std::optional<Message> message = agent.seal->open(arrived->bytes);
    if (!message) {
      // Not the agent's own words (it seals everything it sends): altered on the way, or not
      // from it at all. Nothing in it is acted on.
      agent_failed(agent, ExitCode::kSecurity,
                   "a message on its control channel failed its integrity check (altered or "
                   "forged on the way)");
      return;
    }
    on_agent_message(agent, *message);
    return;
  }
  const auto& failed = std::get<tp::PeerFailed>(event);
  if (agent.state != AgentRecord::State::kDone) {
    agent_failed(agent, ExitCode::kTransferFailed,
                 "lost the connection to its agent (" + failed.status.message() + ")");
  }
}

void RootSession::admit_agents() {
  if (!control_admission_->has_admitted()) {
    return;
  }
  for (AdmittedPeer& peer : control_admission_->take()) {
    // The filter let its rank in at Hello; another connection may have joined as it since.
    AgentRecord& agent = agents_[peer.rank];
    if (agent.state != AgentRecord::State::kLaunched) {
      control_admission_->refuse(std::move(peer),
                                 fmt::format("rank {} has already joined", agent.rank));
      continue;
    }
    agent.control = std::move(peer.endpoint);
    agent.seal = std::move(peer.seal);
    agent.control->set_user_tag(static_cast<std::uint64_t>(agent.rank));
    on_agent_message(agent, peer.introduction);
  }
}

void RootSession::on_agent_message(AgentRecord& agent, const Message& message) {
  if (const auto* join = std::get_if<Join>(&message);
      join != nullptr && agent.state == AgentRecord::State::kLaunched) {
    agent.data_address = join->data_address;
    agent.state = AgentRecord::State::kJoined;
    if (agent.host.empty()) {
      // Started by a launcher that did not tell us its host: take the agent's own name, but only
      // a plain host name (it reaches logs and the report).
      const bool plain =
          !join->host.empty() && join->host.find_first_not_of(
                                     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                                     "QRSTUVWXYZ0123456789._:-") == std::string::npos;
      agent.host = plain ? join->host : fmt::format("rank{}", agent.rank);
      agent.destination = expand_destination(options_.destination, agent.rank, agent.host);
    }
    if (!(cache_ && root_cache_)) {
      start_link_meter(agent);  // with our cache entry standing, settle_link_meter() decides
    }
    return;
  }
  if (const auto* ack = std::get_if<BurstAck>(&message);
      ack != nullptr && agent.rank == meter_rank_ && !agent.finished()) {
    on_burst_ack(agent, *ack);
    return;
  }
  if (const auto* probed = std::get_if<Probed>(&message);
      probed != nullptr && agent.state == AgentRecord::State::kJoined) {
    if (probed->cached != 0)
      agent.cached = probed->digest;
    agent.state = AgentRecord::State::kProbed;
    return;
  }
  if (std::holds_alternative<Result>(message) && agent.skipped) {
    return;  // the answer to Skip: it was counted done when skipped
  }
  if (std::holds_alternative<Ready>(message) && agent.state == AgentRecord::State::kProbed) {
    agent.state = AgentRecord::State::kReady;
    if (agent.place > 0) {
      planner_->ready(agent.place);
    }
    return;
  }
  if (const auto* progress = std::get_if<Progress>(&message);
      progress != nullptr && agent.state == AgentRecord::State::kReady) {
    const std::uint64_t before = agent.bytes_verified;
    agent.bytes_verified = std::min(progress->bytes_verified, source_->size());
    if (before == 0 && agent.bytes_verified > 0) {
      // Once per node: when a slow node's data started, and what a test waits for before it
      // kills a relay above a node that must already hold a prefix.
      log().debug("rank {} reports its first {} B verified", agent.rank, agent.bytes_verified);
    }
    return;
  }
  if (const auto* result = std::get_if<Result>(&message);
      result != nullptr && agent.state == AgentRecord::State::kReady) {
    agent.state = AgentRecord::State::kDone;
    agent.seconds = seconds_between(data_start_, Clock::now());
    agent.bytes_verified = source_->size();
    agent.refetched = result->refetched;
    agent.link_kinds = result->link_kinds;
    return;
  }
  if (const auto* orphaned = std::get_if<Orphaned>(&message);
      orphaned != nullptr && agent.state == AgentRecord::State::kReady && agent.place > 0 &&
      orphaned->tree < topology_->trees()) {
    agent.bytes_verified = std::min<std::uint64_t>(
        static_cast<std::uint64_t>(orphaned->verified) * schedule_.chunk_bytes, source_->size());
    on_orphaned(agent, orphaned->tree, orphaned->reason);
    return;
  }
  if (const auto* adopted = std::get_if<Adopted>(&message);
      adopted != nullptr && adopted->tree < topology_->trees()) {
    on_adopted(agent, *adopted);
    return;
  }
  if (const auto* failed = std::get_if<Failed>(&message)) {
    const auto code = failed->exit_code >= 1 && failed->exit_code <= 4
                          ? static_cast<ExitCode>(failed->exit_code)
                          : ExitCode::kTransferFailed;
    agent_failed(agent, code, failed->reason);
    return;
  }
  agent_failed(agent, ExitCode::kTransferFailed,
               fmt::format("its agent sent an unexpected {}", message_name(message)));
}

void RootSession::agent_failed(AgentRecord& agent, ExitCode code, std::string reason) {
  if (agent.finished()) {
    return;
  }
  log().error("{} (rank {}) failed: {}", agent.host, agent.rank, reason);
  agent.state = AgentRecord::State::kFailed;
  agent.failure = std::move(reason);
  agent.failure_code = code;
  // Its endpoint stays until the end, so a late message still finds its record.
  // An orphan it was about to adopt needs another parent.
  if (planner_ && agent.place > 0) {
    for (const auto& retry : planner_->failed(agent.place)) {
      on_orphaned(agents_[participants_[retry.orphan]], retry.tree,
                  fmt::format("rank {}, chosen to adopt it, failed", agent.rank));
    }
  }
}

void RootSession::tell(AgentRecord& agent, const Message& message) {
  // A send that fails leaves the endpoint's failure latched, and the transport reports it as
  // PeerFailed at the next poll: the agent is failed there, once, with the reason.
  (void)agent.control->send_control(agent.seal->seal(message));
}

void RootSession::tell_every_agent(const Message& message) {
  for (auto& agent : agents_) {
    if (agent.rank != 0 && agent.control) {
      tell(agent, message);  // sealed for each: every agent has its own session key
    }
  }
}

}  // namespace imgcast::replicator
