// RootSession: what `imgcast replicate` does on the root (the first host of the list), from the
// input checks to the report. Its phases, each in its own file:
//   root_session.cc   run(): checks, channels, the phases in order, goodbye, the report
//   root_setup.cc     launch the agents, wait for each phase, probe caches, plan, stage our copy
//   root_control.cc   the control channel: admission of agents and every message they send
//   root_link_meter.cc  the link's speed for the plan, timed while the agents join
//   root_transfer.cc  the transfer loop: our own copy, progress, stalls, re-parenting
// It runs the EventLoop every agent runs; data connections go through the same DataChannel.
//
// Created and run by replicate() on one thread, which owns every Context.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "replicator/image/cache_record.h"
#include "replicator/image/chunk_source.h"
#include "replicator/image/staged_image.h"
#include "replicator/pipeline/data_channel.h"
#include "replicator/plan/link_meter.h"
#include "replicator/plan/reparent_planner.h"
#include "replicator/plan/schedule.h"
#include "replicator/plan/topology.h"
#include "replicator/protocol/admission.h"
#include "replicator/protocol/job_secret.h"
#include "replicator/session/cache_placement.h"
#include "replicator/session/agent_launcher.h"
#include "replicator/session/agent_record.h"
#include "replicator/session/background_placement.h"
#include "replicator/session/event_loop.h"
#include "replicator/session/stream_progress.h"
#include "replicator/session/replicate.h"
#include "replicator/tree/tree_stream.h"

namespace imgcast::replicator {

class RootSession final : public EventLoop::Session {
 public:
  RootSession(const ReplicateOptions& options, const ContextFactory& make_context);
  // A tree placement still waiting for its stream is told to stop, then joined.
  ~RootSession() override;
  RootSession(const RootSession&) = delete;
  RootSession& operator=(const RootSession&) = delete;
  Report run();

  void on_control_event(transport::Completion& event) override;
  void on_stop(int signal) override;

 private:
  using Clock = std::chrono::steady_clock;
  enum class Phase { kJoining, kProbing, kPreparing, kTransfer };

  // root_session.cc
  static double seconds_between(Clock::time_point from, Clock::time_point to);
  void check_inputs();
  // --cache: the source's key by stat() alone, our cache's entry for it as the source when it
  // has one (the source is then not opened at all), else the source (root_cache.cc).
  void open_source_through_cache();
  void open_channels();
  // One turn of the event loop, then the agents' admission and the launcher's exits.
  void step(std::chrono::milliseconds timeout);
  [[noreturn]] void abort_setup(ExitCode code, const std::string& reason);
  // After the joins: when every agent failed (and --allow-fail does not cover them all), the
  // setup stops here, exit 2, instead of a root that copies for itself alone.
  void refuse_a_job_nobody_joined();
  // On a terminal, before data moves: how many agents have reached the step waited for.
  void report_setup_progress(Phase phase, AgentRecord::State target);
  void say_goodbye();
  Report make_report(bool transfer) const;
  // Every agent has reached `at_least` (a failed one counts when `failed_counts`).
  bool all_agents(AgentRecord::State at_least, bool failed_counts = false) const;
  std::string hosts_in(AgentRecord::State state) const;

  // root_setup.cc
  void launch_agents();
  void wait_for(Phase phase);
  void send_probes();
  // Who takes part in the transfer (the root, then every node not skipped); false when nobody
  // needs data.
  bool choose_participants();
  void prepare_root();
  void send_plans();
  void confirm_cached_copies();

  // root_control.cc
  void admit_agents();
  void on_agent_message(AgentRecord& agent, const Message& message);
  void agent_failed(AgentRecord& agent, ExitCode code, std::string reason);
  // Sends one message to an agent's control channel.
  void tell(AgentRecord& agent, const Message& message);
  void tell_every_agent(const Message& message);

  // root_link_meter.cc
  // Times the link with bursts to `agent` (the first to join), unless --link-mbit was given or
  // the data path is not TCP.
  void start_link_meter(AgentRecord& agent);
  void send_bursts(AgentRecord& agent);
  void on_burst_ack(AgentRecord& agent, const BurstAck& ack);
  // From the wait loop: ends a measurement that gave up or whose agent failed.
  void check_link_meter();
  // Sets link_ from the measurement (or keeps the default and says why), and sends the measured
  // agent the Probe held back for it.
  void finish_link_meter();
  // Before the plan: the measurement ended, or dropped when no node needs data.
  void settle_link_meter();

  // root_transfer.cc
  void run_transfer();
  // Sends Finish and starts placing our own copy on its own thread; finish_root_copy() takes
  // its end (and throws what it threw).
  void place_root_copy();
  void finish_root_copy();
  void report_progress();
  // Re-parenting (reparent_planner.h): an agent lost its parent; the nearest live ancestor
  // adopts it.
  void on_orphaned(AgentRecord& orphan, int tree, const std::string& reason);
  void on_adopted(AgentRecord& adopter, const Adopted& adopted);
  void send_reparent(AgentRecord& orphan, int tree, int parent_rank);
  // An adopter that has not answered within the stall timeout is passed over (stopped or cut
  // off without having failed yet).
  void check_adoptions(Clock::time_point now);
  std::vector<std::byte> data_address_of(int rank) const;

  const ReplicateOptions& options_;
  const ContextFactory& make_context_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point data_start_{};
  // When the last node was done (verified and placed, or failed): the end of the transfer
  // phase. Saying goodbye and the agents' own exit (unmapping their copies) come after it.
  Clock::time_point data_end_{};

  JobSecret secret_;
  std::string job_tag_;
  Schedule schedule_;
  LinkModel link_;                   // what the plan assumes: options_.link, beta measured
  std::string link_note_ = "assumed";  // how link_ was found, for the log and the report
  std::optional<LinkMeter> meter_;   // while the link is timed
  int meter_rank_ = 0;               // the agent it is timed with
  bool meter_tried_ = false;         // once per run, with the first agent that joins
  std::chrono::nanoseconds meter_cpu_{};  // this thread's CPU time sealing and sending bursts
  std::vector<std::byte> filler_;    // a burst's bytes
  // The measured agent's Probe waits for the measurement: it may make the agent busy (re-reading
  // a cached copy, reserving its file), and answers late would read as a slow link.
  std::optional<Probe> probe_;
  bool probe_held_ = false;
  std::unique_ptr<Topology> topology_;
  std::unique_ptr<ChunkSource> source_;  // an image file or a TreeStream (root_source.h)
  const TreeStream* tree_ = nullptr;      // source_ when it is a tree
  std::optional<CachePlacement> cache_;  // --cache: our node cache's part (root_cache.cc)
  std::string cache_source_path_;        // the source's absolute path, for every entry's record
  std::optional<StagedImage> image_;
  // Declared before everything they create (endpoints, regions), so they are destroyed last.
  std::unique_ptr<transport::Context> control_ctx_;
  std::unique_ptr<transport::Context> data_ctx_;
  std::unique_ptr<transport::Listener> control_listener_;
  std::unique_ptr<transport::Listener> data_listener_;
  std::string source_key_;                  // for the node-local cache
  std::optional<CacheRecord> root_cache_;   // the root's own copy is this image already
  std::vector<AgentRecord> agents_;         // index = rank; [0] is the root itself
  std::vector<int> participants_;           // by place in the tree: ranks (0 first)
  std::optional<ReparentPlanner> planner_;  // from the plan on

  std::optional<Admission> control_admission_;
  std::optional<DataChannel> data_channel_;
  std::optional<EventLoop> loop_;
  DataNode* node_ = nullptr;  // data_channel_'s, from prepare_root() on
  AgentLauncher launcher_;
  bool progressed_ = false;  // the last step saw any event
  // Set while saying goodbye: every copy is placed, so a stop signal then only cuts the goodbye
  // short (the report still stands).
  bool saying_goodbye_ = false;
  bool stop_during_goodbye_ = false;
  bool root_copy_done_ = false;  // our copy is complete: its Finish went out, its placement runs
  StreamProgress tree_stream_;   // a tree's placement waits on it (outlives placing_)
  // Last, so it is destroyed (and its thread joined) before the StagedImage it works on.
  std::optional<BackgroundPlacement> placing_;
};

}  // namespace imgcast::replicator
