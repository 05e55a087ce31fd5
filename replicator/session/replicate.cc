#include "replicator/session/replicate.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>

#include "replicator/image/image_source.h"
#include "replicator/image/staged_image.h"
#include "replicator/log.h"
#include "replicator/pipeline/data_channel.h"
#include "replicator/plan/topology.h"
#include "replicator/protocol/messages.h"
#include "replicator/session/agent_launcher.h"
#include "replicator/session/stop_signal.h"
#include "transport/error.h"

namespace imgcast::replicator {

namespace tp = transport;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// 4 Gbit/s: above it a page fault per 4 KiB costs a visible share of the receive.
constexpr double kPrefaultFromBytesPerSecond = 0.5e9;

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// One agent as the root sees it.
struct AgentRecord {
  enum class State { kLaunched, kJoined, kProbed, kReady, kDone, kFailed };
  int rank = 0;
  std::string host;
  std::string destination;
  State state = State::kLaunched;
  std::unique_ptr<tp::Endpoint> control;
  std::vector<std::byte> data_address;
  std::string failure;
  ExitCode failure_code = ExitCode::kTransferFailed;
  std::optional<ImageDigest> cached;  // its copy is this image already (from its Probed)
  bool skipped = false;               // ... and it was left out of the transfer
  bool dropped = false;               // failed before the plan: not in the transfer at all
  double seconds = 0;
  std::uint64_t bytes_verified = 0;  // from its Progress reports
  int place = -1;                    // its place in the transfer's tree (participants_), -1: none
  int reparents = 0;                 // times it lost a parent and was given another
  bool left = false;  // a child gave it up (dead, silent, corrupting): it adopts no one
  std::array<int, kMaxTrees> adopter{-1,
                                     -1};  // per tree, while orphaned: the rank asked to adopt it
  std::array<Clock::time_point, kMaxTrees> adopt_asked{};  // ... and when
  std::uint32_t refetched = 0;  // corrupt chunks it fetched again (from its Result)
};

// An orphan gets at most this many new parents; past it, something is wrong with the node itself.
constexpr int kMaxReparents = 8;

// A control connection that has not yet proved it holds the job key.
struct PendingControl {
  PendingControl(std::unique_ptr<tp::Endpoint> e, const JobKey& key, const JobId& job)
      : endpoint(std::move(e)), handshake(key, job, Channel::kControl) {}
  std::unique_ptr<tp::Endpoint> endpoint;
  ResponderHandshake handshake;
  bool challenged = false;
};

class RootSession {
 public:
  RootSession(const ReplicateOptions& options, const ContextFactory& make_context);
  Report run();

 private:
  enum class Phase { kJoining, kProbing, kPreparing, kTransfer };

  void launch_agents();
  void wait_for(Phase phase);
  void run_transfer();
  void step(milliseconds timeout);
  void report_progress();
  // An adopter that has not answered within the stall timeout is passed over (stopped or cut
  // off without having failed yet).
  void check_adoptions(Clock::time_point now);
  void on_control_event(tp::Completion& event);
  void on_pending_message(PendingControl& pending, const Message& message);
  void on_agent_message(AgentRecord& agent, const Message& message);
  void agent_failed(AgentRecord& agent, ExitCode code, std::string reason);
  // Re-parenting (messages.h): an agent lost its parent; the nearest live ancestor adopts it.
  void on_orphaned(AgentRecord& orphan, int tree, const std::string& reason);
  void send_reparent(AgentRecord& orphan, int tree, int parent_rank);
  bool serves_data(int rank) const;
  // Stops talking to a pending control connection; it is closed at the next step (events of the
  // current batch may still name it).
  void drop_pending(tp::Endpoint* endpoint);
  std::vector<std::byte> data_address_of(int rank) const;
  void send_probes();
  // Who takes part in the transfer (the root, then every node not skipped); false when nobody
  // needs data.
  bool choose_participants();
  void prepare_root();
  void send_plans();
  void confirm_cached_copies();
  [[noreturn]] void abort_setup(ExitCode code, const std::string& reason);
  void say_goodbye();
  // Every agent has reached `at_least` (a failed one counts when `failed_counts`).
  bool all_agents(AgentRecord::State at_least, bool failed_counts = false) const;
  std::string hosts_in(AgentRecord::State state) const;

  const ReplicateOptions& options_;
  const ContextFactory& make_context_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point data_start_{};
  // When the last node was done (verified and placed, or failed): the end of the transfer
  // phase. Saying goodbye and the agents' own exit (unmapping their copies) come after it.
  Clock::time_point data_end_{};
  Phase phase_ = Phase::kJoining;

  JobSecret secret_;
  std::string job_tag_;
  Schedule schedule_;
  std::unique_ptr<Topology> topology_;
  std::optional<ImageSource> source_;
  std::optional<StagedImage> image_;
  std::unique_ptr<tp::Context> control_ctx_;
  std::unique_ptr<tp::Context> data_ctx_;
  std::unique_ptr<tp::Listener> control_listener_;
  std::unique_ptr<tp::Listener> data_listener_;
  std::unique_ptr<DataChannel> data_channel_;
  DataNode* node_ = nullptr;               // data_channel_'s, after the plan
  std::string source_key_;                 // for the node-local cache
  std::optional<CacheRecord> root_cache_;  // the root's own copy is this image already
  std::vector<int> participants_;          // by place in the tree: ranks (0 first)
  // By tree, then place: the place of its current parent in that tree (-1 for the root).
  std::vector<std::vector<int>> parent_place_;
  // Prefaulting the staging mappings (~0.3 s per GiB per node) pays only where the network
  // could outrun page faults during the receive; on slower links it is setup time lost.
  bool prefault_ = true;
  std::vector<AgentRecord> agents_;  // index = rank; [0] is the root itself
  std::vector<std::unique_ptr<PendingControl>> pending_;
  std::vector<std::unique_ptr<tp::Endpoint>> retired_;  // see drop_pending
  AgentLauncher launcher_;
  std::vector<tp::Completion> events_;       // control events of the last step
  std::vector<tp::Completion> data_events_;  // data events of the last step
  bool progressed_ = false;                  // the last step saw any event
  milliseconds may_sleep_{0};                // what the node's last pump allows
};

RootSession::RootSession(const ReplicateOptions& options, const ContextFactory& make_context)
    : options_(options), make_context_(make_context), launcher_(options.rsh) {}

Report RootSession::run() {
  const int size = static_cast<int>(options_.hosts.size());
  if (size == 0) {
    throw InputError("no hosts: pass --hosts h1,h2,... or --hostfile FILE");
  }
  if (!options_.publish && !is_this_machine(options_.hosts[0])) {
    throw InputError(
        fmt::format("this machine is not {}, the first host of the list (the root, which reads the "
                    "source): run imgcast replicate there, or put this host first",
                    options_.hosts[0]));
  }
  // Everything that can be checked here is checked before any agent starts: the source (opened
  // now, once, for the whole job), the plan and our own destination.
  source_.emplace(ImageSource::open(options_.source));
  source_key_ = source_->cache_key();
  try {
    schedule_ = choose_schedule(size, source_->size(), options_.topology, options_.chunk_bytes,
                                options_.link);
    topology_ = make_topology(schedule_.topology, size, 0);
    (void)ChunkPlan(source_->size(), schedule_.chunk_bytes);
  } catch (const std::invalid_argument& error) {
    throw InputError(error.what());
  }
  log().info("plan: {}", schedule_.reason);
  secret_.job = random_job_id();
  secret_.key = options_.key ? *options_.key : JobKey::random();
  secret_.transport = options_.transport;
  job_tag_ = to_hex(secret_.job).substr(0, 12);

  agents_.resize(size);
  for (int rank = 0; rank < size; ++rank) {
    agents_[rank].rank = rank;
    agents_[rank].host = options_.hosts[rank];
    agents_[rank].destination =
        expand_destination(options_.destination, rank, options_.hosts[rank]);
  }
  if (!options_.follow_symlinks) {
    refuse_symlinked_directory(agents_[0].destination);  // also before trusting a cached copy
  }
  if (!options_.force && !source_key_.empty()) {
    root_cache_ = read_cache_record(agents_[0].destination);
    if (root_cache_ &&
        (root_cache_->source_key != source_key_ || root_cache_->image_bytes != source_->size())) {
      root_cache_.reset();
    }
  }
  if (!root_cache_) {
    // Created now so that an unusable destination fails before any agent starts; its space is
    // reserved once they stage theirs (on tmpfs that takes ~0.25 s per GiB: it overlaps).
    image_.emplace(StagedImage::create(agents_[0].destination, source_->size(), job_tag_,
                                       options_.mode, options_.follow_symlinks,
                                       StagedImage::Reserve::kLater));
  }

  control_ctx_ = make_context_(tp::Kind::kTcp);
  data_ctx_ = make_context_(options_.transport);
  tp::ListenOptions listen;
  listen.advertise_host = options_.hosts[0];
  control_listener_ = control_ctx_->listen(listen);
  data_listener_ = data_ctx_->listen(listen);
  data_channel_ =
      std::make_unique<DataChannel>(*data_ctx_, secret_.key, secret_.job, options_.connect_timeout);

  launch_agents();
  wait_for(Phase::kJoining);
  send_probes();
  if (image_) {
    // While the agents stage their own copies: the two reservations overlap.
    try {
      image_->reserve();
    } catch (const ImgcastError& error) {
      abort_setup(error.code(), fmt::format("{} (root): {}", options_.hosts[0], error.what()));
    }
  }
  wait_for(Phase::kProbing);
  const bool transfer = choose_participants();
  if (transfer) {
    prepare_root();
    send_plans();
    if (prefault_)
      image_->prefault();  // while the agents stage and prefault their own copies
    wait_for(Phase::kPreparing);
    run_transfer();
    confirm_cached_copies();
  } else {
    // Every copy, ours included, is this image already: the source is not read at all.
    data_start_ = Clock::now();
    data_end_ = data_start_;
    agents_[0].state = AgentRecord::State::kDone;
    say_goodbye();
  }

  Report report;
  report.image_bytes = source_->size();
  report.allowed_failures = options_.allow_fail;
  report.chunk_bytes = transfer ? schedule_.chunk_bytes : 0;
  report.topology = transfer ? topology_->name() : "none (every copy cached)";
  report.transport = std::string(tp::to_string(options_.transport));
  report.digest = !transfer                    ? root_cache_->digest.to_hex()
                  : node_ && node_->complete() ? node_->digest().to_hex()
                                               : "";
  report.plan = transfer ? schedule_.reason
                         : "every copy is this image already (node-local cache): nothing sent";
  report.setup_seconds = seconds_between(start_, data_start_);
  report.transfer_seconds = seconds_between(data_start_, data_end_);
  for (const auto& agent : agents_) {
    NodeResult result;
    result.rank = agent.rank;
    result.host = agent.host;
    result.destination = agent.destination;
    result.verified = agent.state == AgentRecord::State::kDone;
    result.seconds = agent.seconds;
    result.failure = agent.failure;
    result.cached = agent.skipped;
    result.reparents = agent.reparents;
    result.refetched = agent.refetched;
    report.nodes.push_back(std::move(result));
  }
  return report;
}

void RootSession::launch_agents() {
  const std::string control = control_listener_->name();
  if (options_.publish) {
    options_.publish(control, secret_.to_line());
    return;
  }
  if (!options_.agent_step.empty()) {
    std::vector<std::string> argv = options_.agent_step;
    argv.push_back(options_.agent_program);
    argv.insert(argv.end(), options_.agent_args.begin(), options_.agent_args.end());
    std::string all_hosts;
    for (const auto& host : options_.hosts)
      all_hosts += (all_hosts.empty() ? "" : ",") + host;
    for (const char* word : {"agent", "--control"})
      argv.emplace_back(word);
    argv.push_back(control);
    for (const char* word : {"--rank", "auto", "--host", "auto", "--hosts"})
      argv.emplace_back(word);
    argv.push_back(all_hosts);
    launcher_.launch_step(argv, kSecretVariable, secret_.to_line());
    return;
  }
  for (std::size_t rank = 1; rank < agents_.size(); ++rank) {
    std::string command = "exec " + shell_quote(options_.agent_program);
    for (const auto& arg : options_.agent_args) {
      command += " " + shell_quote(arg);
    }
    command += " agent --control " + shell_quote(control) + " --rank " + std::to_string(rank) +
               " --host " + shell_quote(agents_[rank].host);
    launcher_.launch(static_cast<int>(rank), agents_[rank].host, command, secret_.to_line());
  }
}

void RootSession::wait_for(Phase phase) {
  phase_ = phase;
  const auto target = phase == Phase::kJoining   ? AgentRecord::State::kJoined
                      : phase == Phase::kProbing ? AgentRecord::State::kProbed
                                                 : AgentRecord::State::kReady;
  const auto deadline = Clock::now() + options_.connect_timeout;
  // While probing, a node whose destination fails (missing, unwritable, full) drops out alone:
  // no data has moved and the plan is not made yet. Elsewhere a failure stops the setup.
  const bool tolerate_failed = phase == Phase::kProbing;
  while (!all_agents(target, tolerate_failed)) {
    step(milliseconds(200));
    for (const auto& agent : agents_) {
      if (agent.state == AgentRecord::State::kFailed && !tolerate_failed && !agent.dropped) {
        abort_setup(agent.failure_code,
                    fmt::format("{} (rank {}): {}", agent.host, agent.rank, agent.failure));
      }
    }
    if (Clock::now() > deadline) {
      const auto state = phase == Phase::kJoining   ? AgentRecord::State::kLaunched
                         : phase == Phase::kProbing ? AgentRecord::State::kJoined
                                                    : AgentRecord::State::kProbed;
      abort_setup(ExitCode::kTransferFailed,
                  fmt::format("timed out after {} ms waiting for the agent on {} to {} ({})",
                              options_.connect_timeout.count(), hosts_in(state),
                              phase == Phase::kJoining   ? "join"
                              : phase == Phase::kProbing ? "check its cached copy"
                                                         : "get ready",
                              options_.publish ? "did the launcher start imgcast hook on every "
                                                 "node, and do they share the rendezvous directory?"
                                               : "is the host reachable, and can the launcher "
                                                 "start imgcast there?"));
    }
  }
}

void RootSession::send_probes() {
  Probe probe;
  probe.image_bytes = source_->size();
  probe.force = options_.force || source_key_.empty() ? 1 : 0;
  probe.mode = options_.mode;
  probe.follow_symlinks = options_.follow_symlinks ? 1 : 0;
  probe.job_tag = job_tag_;
  probe.source_key = source_key_;
  probe.destination = options_.destination;
  for (std::size_t rank = 1; rank < agents_.size(); ++rank) {
    (void)agents_[rank].control->send_control(encode(probe));
  }
}

bool RootSession::choose_participants() {
  participants_ = {0};
  for (std::size_t rank = 1; rank < agents_.size(); ++rank) {
    auto& agent = agents_[rank];
    if (agent.state == AgentRecord::State::kFailed) {
      agent.dropped = true;  // it could not stage its file: it is reported, the others go on
      continue;
    }
    // With our own copy cached, a node's copy counts only if it is the very same image; without
    // it the claim is checked against the digest of the transfer (confirm_cached_copies).
    const bool hit = agent.cached && (!root_cache_ || root_cache_->digest == *agent.cached);
    if (hit) {
      agent.skipped = true;
      agent.state = AgentRecord::State::kDone;
      (void)agent.control->send_control(encode(Skip{}));
    } else {
      participants_.push_back(static_cast<int>(rank));
    }
  }
  if (root_cache_ && participants_.size() == 1) {
    agents_[0].skipped = true;
    log().info("every copy is this image already: nothing to send");
    return false;
  }
  log().info("{} of {} nodes take part in the transfer ({} cached)", participants_.size(),
             agents_.size(),
             std::count_if(agents_.begin(), agents_.end(),
                           [](const AgentRecord& a) { return a.skipped; }));
  return true;
}

void RootSession::prepare_root() {
  const int size = static_cast<int>(participants_.size());
  try {
    schedule_ = choose_schedule(size, source_->size(), options_.topology, options_.chunk_bytes,
                                options_.link);
    topology_ = make_topology(schedule_.topology, size, 0);
  } catch (const std::invalid_argument& error) {
    throw InputError(error.what());
  }
  log().info("plan: {}", schedule_.reason);
  prefault_ = options_.link.beta_bytes_per_second >= kPrefaultFromBytesPerSecond;
  if (!image_) {
    // Our copy was cached but others need the image: we stage it again as their source.
    image_.emplace(StagedImage::create(agents_[0].destination, source_->size(), job_tag_,
                                       options_.mode, options_.follow_symlinks));
  }
  DataNodeOptions node_options;
  node_options.rank = 0;
  node_options.topology = topology_.get();
  node_options.image_bytes = source_->size();
  node_options.chunk_bytes = schedule_.chunk_bytes;
  node_options.key = &secret_.key;
  node_options.job = secret_.job;
  node_ = &data_channel_->start(node_options, *image_);
  node_->use_source(*source_);
}

void RootSession::confirm_cached_copies() {
  if (!node_ || !node_->complete())
    return;
  for (auto& agent : agents_) {
    if (agent.skipped && agent.cached && *agent.cached != node_->digest()) {
      agent.skipped = false;
      agent.state = AgentRecord::State::kProbed;  // counted done when skipped: not any more
      agent_failed(agent, ExitCode::kTransferFailed,
                   fmt::format("its cached copy (xxh3-128 {}) is not the source's ({}): run with "
                               "--force",
                               agent.cached->to_hex(), node_->digest().to_hex()));
    }
  }
}

void RootSession::send_plans() {
  parent_place_.assign(topology_->trees(), std::vector<int>(participants_.size(), -1));
  agents_[0].place = 0;
  for (std::size_t place = 1; place < participants_.size(); ++place) {
    const int rank = participants_[place];
    agents_[rank].place = static_cast<int>(place);
    Plan plan;
    plan.image_bytes = source_->size();
    plan.chunk_bytes = schedule_.chunk_bytes;
    plan.job_size = static_cast<std::uint32_t>(participants_.size());
    plan.mode = options_.mode;
    plan.data_rank = static_cast<std::uint32_t>(place);
    plan.stall_timeout_ms = static_cast<std::uint32_t>(options_.stall_timeout.count());
    plan.prefault = prefault_ ? 1 : 0;
    plan.topology = topology_->name();
    plan.destination = options_.destination;
    plan.job_tag = job_tag_;
    for (int tree = 0; tree < topology_->trees(); ++tree) {
      parent_place_[tree][place] = topology_->parent(static_cast<int>(place), tree);
      const int parent = participants_[parent_place_[tree][place]];
      plan.parents.push_back({static_cast<std::uint32_t>(parent), data_address_of(parent)});
    }
    (void)agents_[rank].control->send_control(encode(plan));
  }
}

void RootSession::run_transfer() {
  phase_ = Phase::kTransfer;
  data_start_ = Clock::now();
  log().debug("all {} nodes ready after {:.3f}s; data flows", agents_.size(),
              seconds_between(start_, data_start_));
  auto last_progress = data_start_;
  std::uint64_t last_bytes = 0;
  bool finished_sent = false;
  auto last_report = data_start_;
  auto last_adoption_check = data_start_;
  auto& root = agents_[0];
  for (;;) {
    step(std::min(may_sleep_, milliseconds(200)));

    if (const auto& failure = node_->failure()) {
      // The root's own copy is the source of everything: without it nobody can finish.
      for (auto& agent : agents_) {
        if (agent.rank != 0 && agent.control) {
          (void)agent.control->send_control(encode(Abort{*failure}));
        }
      }
      throw TransferError(fmt::format("{} (root): {}", root.host, *failure));
    }
    if (node_->complete() && !finished_sent) {
      CacheRecord cache;
      cache.source_key = source_key_;
      cache.image_bytes = source_->size();
      cache.digest = node_->digest();
      image_->commit(source_key_.empty() ? nullptr : &cache);
      root.state = AgentRecord::State::kDone;
      root.seconds = seconds_between(data_start_, Clock::now());
      const Finish finish{node_->digest()};
      for (auto& agent : agents_) {
        if (agent.rank != 0 && agent.control) {
          (void)agent.control->send_control(encode(finish));
        }
      }
      finished_sent = true;
    }
    // Anyone still missing when nothing has moved for twice the stall timeout has failed. Twice:
    // an agent whose parent stalls gives it up after one stall timeout and re-parents, and that
    // must have its chance first.
    const std::uint64_t bytes = node_->bytes_verified();
    const auto now = Clock::now();
    if (bytes != last_bytes || progressed_) {
      last_bytes = bytes;
      last_progress = now;
    } else if (now - last_progress > 2 * options_.stall_timeout) {
      node_->stop_pacing();  // our own copy finishes whatever the children do
      for (auto& agent : agents_) {
        if (agent.rank != 0 && agent.state != AgentRecord::State::kDone &&
            agent.state != AgentRecord::State::kFailed) {
          agent_failed(
              agent, ExitCode::kTransferFailed,
              fmt::format("no progress for {:.1f} s", 2 * options_.stall_timeout.count() / 1000.0));
        }
      }
    }
    if (now - last_adoption_check >= milliseconds(100)) {
      last_adoption_check = now;
      check_adoptions(now);
    }
    if (options_.on_progress && now - last_report >= milliseconds(250)) {
      last_report = now;
      report_progress();
    }
    if (std::all_of(agents_.begin(), agents_.end(), [](const AgentRecord& a) {
          return a.state == AgentRecord::State::kDone || a.state == AgentRecord::State::kFailed;
        })) {
      data_end_ = Clock::now();
      break;
    }
  }
  say_goodbye();
}

void RootSession::report_progress() {
  ProgressSnapshot snapshot;
  snapshot.image_bytes = source_->size();
  snapshot.elapsed_seconds = seconds_between(data_start_, Clock::now());
  for (const auto& agent : agents_) {
    snapshot.bytes_verified.push_back(agent.rank == 0 ? node_->bytes_verified()
                                                      : agent.bytes_verified);
    snapshot.hosts.push_back(agent.host);
    snapshot.done += agent.state == AgentRecord::State::kDone;
    snapshot.failed += agent.state == AgentRecord::State::kFailed;
  }
  options_.on_progress(snapshot);
}

void RootSession::step(milliseconds timeout) {
  if (stop_requested()) {
    abort_setup(
        ExitCode::kTransferFailed,
        fmt::format("interrupted by signal {}; every temporary file was removed", stop_signal()));
  }
  retired_.clear();
  const int fds[] = {control_ctx_->wait_fd(), data_ctx_->wait_fd(), data_channel_->wake_fd()};
  wait_readable(fds, timeout);
  events_.clear();
  drain(*control_ctx_, events_);
  for (auto& event : events_) {
    on_control_event(event);
  }
  data_events_.clear();
  drain(*data_ctx_, data_events_);
  for (auto& event : data_events_) {
    data_channel_->handle(event);
  }
  may_sleep_ = data_channel_->after_batch(Clock::now());
  progressed_ = !events_.empty() || !data_events_.empty();
  for (const auto& exit : launcher_.reap()) {
    // rank -1: the one launcher process that started every agent (srun, mpirun) ended.
    for (auto& agent : agents_) {
      if (agent.rank == 0 || (exit.rank >= 0 && agent.rank != exit.rank))
        continue;
      if (agent.state != AgentRecord::State::kDone && agent.state != AgentRecord::State::kFailed) {
        agent_failed(agent, ExitCode::kTransferFailed,
                     exit.rank >= 0 ? fmt::format("its agent {} before finishing", exit.how)
                                    : fmt::format("the agent launcher ({}) {} before the agent "
                                                  "finished",
                                                  options_.agent_step.front(), exit.how));
      }
    }
  }
}

void RootSession::on_control_event(tp::Completion& event) {
  if (auto* accepted = std::get_if<tp::PeerAccepted>(&event)) {
    pending_.push_back(
        std::make_unique<PendingControl>(std::move(accepted->endpoint), secret_.key, secret_.job));
    return;
  }
  tp::Endpoint* from = nullptr;
  if (auto* arrived = std::get_if<tp::ControlArrived>(&event)) {
    from = arrived->from;
    const std::optional<Message> message = decode(arrived->bytes);
    const std::uint64_t tag = from->user_tag();
    if (tag > 0 && tag < agents_.size() && agents_[tag].control.get() == from) {
      if (!message) {
        agent_failed(agents_[tag], ExitCode::kTransferFailed, "its agent sent a malformed message");
        return;
      }
      on_agent_message(agents_[tag], *message);
      return;
    }
    for (auto& pending : pending_) {
      if (pending->endpoint.get() == from) {
        if (!message) {
          log().warn("refused control connection from {}: malformed message", from->peer_name());
          drop_pending(from);
          return;
        }
        on_pending_message(*pending, *message);
        return;
      }
    }
    return;
  }
  if (auto* failed = std::get_if<tp::PeerFailed>(&event)) {
    from = failed->peer;
    const std::uint64_t tag = from->user_tag();
    if (tag > 0 && tag < agents_.size() && agents_[tag].control.get() == from) {
      auto& agent = agents_[tag];
      if (agent.state != AgentRecord::State::kDone) {
        agent_failed(agent, ExitCode::kTransferFailed,
                     "lost the connection to its agent (" + failed->status.message() + ")");
      }
      return;
    }
    drop_pending(from);
  }
}

void RootSession::on_pending_message(PendingControl& pending, const Message& message) {
  tp::Endpoint* endpoint = pending.endpoint.get();
  auto refuse = [this, endpoint](const std::string& why) {
    log().warn("refused control connection from {}: {}", endpoint->peer_name(), why);
    drop_pending(endpoint);
  };
  if (!pending.challenged) {
    const auto* hello = std::get_if<Hello>(&message);
    if (hello == nullptr) {
      return refuse(fmt::format("sent {} before Hello", message_name(message)));
    }
    if (hello->rank == 0 || hello->rank >= agents_.size() ||
        agents_[hello->rank].state != AgentRecord::State::kLaunched) {
      return refuse(
          fmt::format("claims rank {}, which is not an agent waiting to join", hello->rank));
    }
    std::string why;
    const std::optional<Challenge> challenge = pending.handshake.challenge(*hello, why);
    if (!challenge) {
      return refuse(why);
    }
    (void)endpoint->send_control(encode(*challenge));
    pending.challenged = true;
    return;
  }
  const auto* proof = std::get_if<Proof>(&message);
  if (proof == nullptr || !pending.handshake.verify(*proof)) {
    return refuse("failed authentication (it does not hold this job's key)");
  }
  auto& agent = agents_[pending.handshake.peer_rank()];
  if (agent.state != AgentRecord::State::kLaunched) {
    return refuse(fmt::format("rank {} has already joined", agent.rank));
  }
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [endpoint](const auto& p) { return p->endpoint.get() == endpoint; });
  agent.control = std::move((*it)->endpoint);
  agent.control->set_user_tag(static_cast<std::uint64_t>(agent.rank));
  pending_.erase(it);
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
    return;
  }
  if (const auto* progress = std::get_if<Progress>(&message);
      progress != nullptr && agent.state == AgentRecord::State::kReady) {
    agent.bytes_verified = std::min(progress->bytes_verified, source_->size());
    return;
  }
  if (const auto* result = std::get_if<Result>(&message);
      result != nullptr && agent.state == AgentRecord::State::kReady) {
    agent.state = AgentRecord::State::kDone;
    agent.seconds = seconds_between(data_start_, Clock::now());
    agent.bytes_verified = source_->size();
    agent.refetched = result->refetched;
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
    // The answer to our Adopt: now the orphan may connect (before it, it would be refused).
    for (auto& orphan : agents_) {
      if (orphan.place == static_cast<int>(adopted->data_rank) &&
          orphan.adopter[adopted->tree] == agent.rank &&
          orphan.state == AgentRecord::State::kReady) {
        send_reparent(orphan, adopted->tree, agent.rank);
      }
    }
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
  if (agent.state == AgentRecord::State::kFailed || agent.state == AgentRecord::State::kDone) {
    return;
  }
  log().error("{} (rank {}) failed: {}", agent.host, agent.rank, reason);
  agent.state = AgentRecord::State::kFailed;
  agent.failure = std::move(reason);
  agent.failure_code = code;
  // Its endpoint stays until the end, so a late message still finds its record.
  // An orphan it was about to adopt needs another parent.
  for (auto& orphan : agents_) {
    for (int tree = 0; tree < static_cast<int>(parent_place_.size()); ++tree) {
      if (orphan.adopter[tree] == agent.rank && orphan.state == AgentRecord::State::kReady) {
        orphan.adopter[tree] = -1;
        on_orphaned(orphan, tree, fmt::format("rank {}, chosen to adopt it, failed", agent.rank));
      }
    }
  }
}

bool RootSession::serves_data(int rank) const {
  // A node that finished still serves (its agent runs until Bye); a failed one does not, nor one
  // a child gave up on: it may be stopped or cut off without having failed yet (its other
  // children may then leave it too, and must not be sent back to it).
  const auto& agent = agents_[rank];
  return rank == 0 || (!agent.left && (agent.state == AgentRecord::State::kReady ||
                                       agent.state == AgentRecord::State::kDone));
}

void RootSession::check_adoptions(Clock::time_point now) {
  for (auto& orphan : agents_) {
    for (int tree = 0; tree < static_cast<int>(parent_place_.size()); ++tree) {
      const int adopter = orphan.adopter[tree];
      if (adopter < 0 || orphan.state != AgentRecord::State::kReady ||
          now - orphan.adopt_asked[tree] <= options_.stall_timeout) {
        continue;
      }
      // on_orphaned marks the silent adopter as left (it is the orphan's parent of record now).
      orphan.adopter[tree] = -1;
      on_orphaned(orphan, tree,
                  fmt::format("rank {}, chosen to adopt it, did not answer for {:.1f} s", adopter,
                              options_.stall_timeout.count() / 1000.0));
    }
  }
}

void RootSession::drop_pending(tp::Endpoint* endpoint) {
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if ((*it)->endpoint.get() == endpoint) {
      retired_.push_back(std::move((*it)->endpoint));
      pending_.erase(it);
      return;
    }
  }
}

std::vector<std::byte> RootSession::data_address_of(int rank) const {
  if (rank == 0) {
    const auto address = data_listener_->address();
    return {address.begin(), address.end()};
  }
  return agents_[rank].data_address;
}

void RootSession::on_orphaned(AgentRecord& orphan, int tree, const std::string& reason) {
  if (++orphan.reparents > kMaxReparents) {
    const std::string why =
        fmt::format("lost its parent {} times (last: {})", orphan.reparents - 1, reason);
    (void)orphan.control->send_control(encode(Abort{why}));
    agent_failed(orphan, ExitCode::kTransferFailed, why);
    return;
  }
  // The nearest live ancestor of the lost parent takes over; the root always serves. The lost
  // parent itself is passed over even when it lives: its link to this node failed. Ancestors
  // are never in the orphan's own subtree, so no cycle can form.
  // In a two-tree topology the climb stays in the tree where the parent was lost.
  std::vector<int>& parent_place = parent_place_[tree];
  const int place = orphan.place;
  const int lost = parent_place[place];
  agents_[participants_[lost]].left = true;
  int adopter = lost;
  do {
    adopter = adopter == 0 ? 0 : parent_place[adopter];
  } while (adopter != 0 && !serves_data(participants_[adopter]));
  parent_place[place] = adopter;
  const int adopter_rank = participants_[adopter];
  log().warn("{} (rank {}) lost its parent rank {}{} ({}); rank {} adopts it", orphan.host,
             orphan.rank, participants_[lost],
             parent_place_.size() > 1 ? fmt::format(" in tree {}", tree) : std::string(), reason,
             adopter_rank);
  if (adopter == 0) {
    node_->adopt(place, tree);
    send_reparent(orphan, tree, 0);
    return;
  }
  orphan.adopter[tree] = adopter_rank;
  orphan.adopt_asked[tree] = Clock::now();
  (void)agents_[adopter_rank].control->send_control(
      encode(Adopt{static_cast<std::uint32_t>(place), static_cast<std::uint8_t>(tree)}));
}

void RootSession::send_reparent(AgentRecord& orphan, int tree, int parent_rank) {
  Reparent reparent;
  reparent.tree = static_cast<std::uint8_t>(tree);
  reparent.parent_rank = static_cast<std::uint32_t>(parent_rank);
  reparent.parent_address = data_address_of(parent_rank);
  orphan.adopter[tree] = -1;
  (void)orphan.control->send_control(encode(reparent));
}

void RootSession::abort_setup(ExitCode code, const std::string& reason) {
  for (auto& agent : agents_) {
    if (agent.rank != 0 && agent.control) {
      (void)agent.control->send_control(encode(Abort{reason}));
    }
  }
  std::vector<tp::Completion> ignored;
  (void)control_ctx_->poll(ignored, milliseconds(50));
  launcher_.finish(milliseconds(3000));
  throw ImgcastError(code, reason);
}

void RootSession::say_goodbye() {
  for (auto& agent : agents_) {
    if (agent.rank != 0 && agent.control) {
      (void)agent.control->send_control(encode(Bye{}));
    }
  }
  // Keep draining until the agents have gone, so the Bye messages actually leave.
  const auto deadline = Clock::now() + milliseconds(5000);
  while (launcher_.running() && Clock::now() < deadline) {
    const int fds[] = {control_ctx_->wait_fd()};
    wait_readable(fds, milliseconds(20));
    events_.clear();
    drain(*control_ctx_, events_);
    launcher_.reap();
  }
  launcher_.finish(milliseconds(1000));
}

bool RootSession::all_agents(AgentRecord::State at_least, bool failed_counts) const {
  return std::all_of(agents_.begin() + 1, agents_.end(), [&](const AgentRecord& a) {
    if (a.dropped)
      return true;  // out of the transfer since the probe
    return a.state == AgentRecord::State::kFailed ? failed_counts : a.state >= at_least;
  });
}

std::string RootSession::hosts_in(AgentRecord::State state) const {
  std::string out;
  for (const auto& agent : agents_) {
    if (agent.rank != 0 && agent.state == state) {
      out += (out.empty() ? "" : ", ") +
             (agent.host.empty() ? fmt::format("rank {}", agent.rank) : agent.host);
    }
  }
  return out;
}

}  // namespace

Report replicate(const ReplicateOptions& options, const ContextFactory& make_context) {
  install_stop_handlers();
  RootSession session(options, make_context);
  return session.run();
}

}  // namespace imgcast::replicator
