// AgentSession: what `imgcast agent` does on every host but the root. It joins the root's
// control channel (the initiator of the handshake), checks its cache and stages its file when
// probed, builds its DataNode from the plan, relays chunks to its children, places its copy when
// the root's digest matches, and reports. It runs the same EventLoop as the root; connections to
// its data listener go through the same DataChannel (admitted even before the plan).
//
// Created and run by run_agent() on one thread, which owns both Contexts.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "replicator/image/staged_image.h"
#include "replicator/pipeline/data_channel.h"
#include "replicator/plan/topology.h"
#include "replicator/protocol/job_secret.h"
#include "replicator/session/cache_placement.h"
#include "replicator/session/agent.h"
#include "replicator/session/background_placement.h"
#include "replicator/session/event_loop.h"
#include "replicator/session/stream_progress.h"

namespace imgcast::replicator {

class AgentSession final : public EventLoop::Session {
 public:
  AgentSession(const AgentOptions& options, const JobSecret& secret,
               const ContextFactory& make_context);
  // A tree placement still waiting for its stream is told to stop, then joined.
  ~AgentSession() override;
  AgentSession(const AgentSession&) = delete;
  AgentSession& operator=(const AgentSession&) = delete;
  ExitCode run();

  void on_control_event(transport::Completion& event) override;
  void on_stop(int signal) override;

 private:
  using Clock = std::chrono::steady_clock;

  // Phases of the control channel, in order; each root message acts only in its own.
  enum class Phase { kHandshake, kJoined, kProbed, kSkipped, kPlanned };

  // Before the root's proof: only its Challenge is taken; anything else refuses it.
  void on_unproven_message(std::span<const std::byte> bytes);
  // A message that opened under the seal: from the authenticated root.
  void on_root_message(const Message& message);
  void on_challenge(const Challenge& challenge);
  void on_probe(const Probe& probe);
  void on_plan(const Plan& plan);
  void on_adopt(const Adopt& adopt);
  void on_reparent(const Reparent& reparent);
  // After every turn once the plan is here: failures, stalls, orphans, progress, the finish.
  void check_done();
  // A tree is written as its stream arrives: its placement starts with the plan.
  void start_tree_placement();
  // The placement thread has ended: the Result, or the failure it threw.
  void finish_placement(Clock::time_point now);
  void report_failure(ExitCode code, const std::string& reason);
  // Sends one message to the root.
  void tell_root(const Message& message);

  const AgentOptions& options_;
  const JobSecret& secret_;
  // Declared before everything they create, so they are destroyed last.
  std::unique_ptr<transport::Context> control_ctx_;
  std::unique_ptr<transport::Context> data_ctx_;
  std::unique_ptr<transport::Listener> data_listener_;
  std::unique_ptr<transport::Endpoint> control_;
  std::optional<InitiatorHandshake> handshake_;
  std::optional<MessageSeal> seal_;  // once the root proved itself
  Phase phase_ = Phase::kHandshake;
  Probe probe_;  // what the file was staged for; the plan must agree

  std::unique_ptr<Topology> topology_;
  std::optional<CachePlacement> cache_;  // --cache: the node cache's part (pins while we live)
  std::optional<StagedImage> image_;
  std::optional<DataChannel> data_channel_;
  std::optional<EventLoop> loop_;
  DataNode* node_ = nullptr;  // data_channel_'s, after the plan
  std::optional<ImageDigest> expected_digest_;
  Clock::time_point plan_time_{};
  Clock::time_point last_progress_report_{};
  std::uint64_t last_bytes_ = 0;
  std::chrono::milliseconds stall_timeout_{0};
  bool reported_ = false;
  std::vector<bool> orphan_reported_;  // per tree: the root knows we wait for a new parent
  bool placed_ = false;                // our verified copy is at DST (a file or a tree)
  bool cached_ = false;                // our copy matched the root's probe
  bool skipped_ = false;               // ... and the root let it stand
  std::string source_key_;
  std::optional<ExitCode> exit_;
  bool confirmed_ = false;  // the whole stream matched the root's digest (a tree: told to it)
  StreamProgress tree_stream_;  // a tree's placement waits on it (outlives placing_)
  // Last, so it is destroyed (and its thread joined) before the StagedImage it works on.
  std::optional<BackgroundPlacement> placing_;
};

}  // namespace imgcast::replicator
