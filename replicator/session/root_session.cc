#include "replicator/session/root_session.h"

#include <fmt/format.h>

#include <algorithm>

#include "replicator/image/destination.h"
#include "replicator/log.h"
#include "replicator/session/descriptor_budget.h"
#include "replicator/session/host_names.h"
#include "replicator/session/listen_address.h"
#include "replicator/session/placement.h"
#include "replicator/session/root_source.h"
#include "replicator/session/this_machine.h"
#include "replicator/session/tree_placement.h"

namespace imgcast::replicator {

namespace tp = transport;
using std::chrono::milliseconds;

double RootSession::seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

RootSession::RootSession(const ReplicateOptions& options, const ContextFactory& make_context)
    : options_(options), make_context_(make_context), link_(options.link), launcher_(options.rsh) {
  if (!options_.measure_link) {
    link_note_ = "given";
  }
}

RootSession::~RootSession() { tree_stream_.fail(); }  // before placing_ joins its thread

Report RootSession::run() {
  check_inputs();
  open_channels();
  launch_agents();
  wait_for(Phase::kJoining);
  refuse_a_job_nobody_joined();
  send_probes();
  if (image_) {
    // While the agents stage their own copies.
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
    wait_for(Phase::kPreparing);
    run_transfer();
    confirm_cached_copies();
  } else {
    // Every copy, ours included, is this image already: the source is not read at all.
    data_start_ = Clock::now();
    data_end_ = data_start_;
    agents_[0].state = AgentRecord::State::kDone;
  }
  say_goodbye();
  return make_report(transfer);
}

void RootSession::refuse_a_job_nobody_joined() {
  const std::size_t agents = agents_.size() - 1;
  const bool nobody = agents > 0 && std::all_of(agents_.begin() + 1, agents_.end(),
                                                [](const AgentRecord& a) { return a.finished(); });
  // Every host failing the same way (a launcher that does not exist, no network) is the
  // command's failure, not a partial result: nothing is placed, exit 2. Unless the user allowed
  // every agent to fail.
  if (nobody && static_cast<std::size_t>(options_.allow_fail) < agents) {
    abort_setup(ExitCode::kTransferFailed, fmt::format("no agent joined; {} (rank 1): {}",
                                                       agents_[1].host, agents_[1].failure));
  }
}

void RootSession::check_inputs() {
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
  secret_.job = random_job_id();
  job_tag_ = to_hex(secret_.job).substr(0, 12);
  // Everything that can be checked here is checked before any agent starts: the source (opened
  // now, once, for the whole job), the plan and our own destination.
  if (options_.cache) {
    open_source_through_cache();  // our cache's entry when it has one, else the source
  } else {
    RootSource opened = open_root_source(options_.sources.empty()
                                             ? std::vector<std::filesystem::path>{options_.source}
                                             : options_.sources);
    source_ = std::move(opened.source);
    tree_ = opened.tree;
    source_key_ = source_->cache_key();
  }
  try {
    schedule_ = choose_schedule(size, source_->size(), options_.topology, options_.chunk_bytes,
                                options_.link);
    topology_ = make_topology(schedule_.topology, size, 0);
    (void)ChunkPlan(source_->size(), schedule_.chunk_bytes);  // throws for a bad chunk size
  } catch (const std::invalid_argument& error) {
    throw InputError(error.what());
  }
  log().info("plan: {}", schedule_.reason);
  // Before any agent starts: past the descriptor limit, accept() fails mid-setup for everyone.
  const bool per_host_launcher = !options_.publish && options_.agent_step.empty();
  ensure_descriptors(descriptor_budget(*topology_, per_host_launcher), options_.hosts.size());
  secret_.key = options_.key ? *options_.key : JobKey::random();
  secret_.transport = options_.transport;
  secret_.transport_fallback = options_.transport_fallback;

  agents_.resize(size);
  for (int rank = 0; rank < size; ++rank) {
    agents_[rank].rank = rank;
    agents_[rank].host = options_.hosts[rank];
    agents_[rank].destination =
        expand_destination(options_.destination, rank, options_.hosts[rank]);
  }
  if (cache_) {
    if (!root_cache_) {
      image_.emplace(cache_->stage(source_->size(), StagedImage::Reserve::kLater));
    }
    return;
  }
  if (tree_) {
    refuse_destination_inside_sources(options_.sources.empty()
                                          ? std::vector<std::filesystem::path>{options_.source}
                                          : options_.sources,
                                      tree_destination(agents_[0].destination));
    // Our tree is this source's already, or its stream is staged (in memory, or beside DST
    // under a staging name: stage_tree_stream()), and DST must be free or an earlier copy.
    const std::filesystem::path dst = tree_destination(agents_[0].destination);
    root_cache_ = find_cached_tree(dst, source_key_, source_->size(), options_.force,
                                   options_.follow_symlinks);
    if (!root_cache_) {
      (void)check_tree_destination(dst, options_.follow_symlinks);
      image_.emplace(stage_tree_stream(dst, source_->size(), job_tag_, options_.follow_symlinks,
                                       StagedImage::Reserve::kLater));
    }
    return;
  }
  root_cache_ = find_cached_copy(agents_[0].destination, source_key_, source_->size(),
                                 options_.force, options_.follow_symlinks);
  if (!root_cache_) {
    // Created now so that an unusable destination fails before any agent starts; its space is
    // reserved once they stage theirs (on tmpfs that takes ~0.25 s per GiB: it overlaps).
    image_.emplace(StagedImage::create(agents_[0].destination, source_->size(), job_tag_,
                                       options_.mode, options_.follow_symlinks,
                                       StagedImage::Reserve::kLater));
  }
}

void RootSession::open_channels() {
  control_ctx_ = make_context_(tp::Kind::kTcp, control_context_options());
  data_ctx_ = make_context_(options_.transport, data_context_options(options_.transport_fallback));
  tp::ListenOptions listen;
  listen.advertise_host = options_.hosts[0];
  listen.bind_host = bind_address_for(options_.hosts[0], options_.bind_any);
  control_listener_ = listen_on(*control_ctx_, listen);
  data_listener_ = listen_on(*data_ctx_, listen);

  Admission::Options control;
  control.channel = Channel::kControl;
  control.key = &secret_.key;
  control.job = secret_.job;
  control.deadline = options_.connect_timeout;
  control.max_waiting = agents_.size() + 64;  // every agent may knock at once, and some strays
  // Agents on loopback "hosts" (tests, demo) all connect from 127.0.0.1 at once: the per-address
  // cap on unproven connections counts them on top of its usual allowance.
  control.max_waiting_per_address += static_cast<std::size_t>(
      std::count_if(options_.hosts.begin() + 1, options_.hosts.end(),
                    [](const std::string& h) { return is_loopback_literal(h); }));
  control.sealed = true;  // a Plan, Finish or Abort in flight is not the network path's to change
  control.filter = [this](std::uint32_t rank) -> std::string {
    if (rank == 0 || rank >= agents_.size() ||
        agents_[rank].state != AgentRecord::State::kLaunched) {
      return fmt::format("claims rank {}, which is not an agent waiting to join", rank);
    }
    return {};
  };
  control_admission_.emplace(std::move(control));
  // The root adopts orphans on top of its own children: any node may connect to it at once.
  data_channel_.emplace(*data_ctx_, secret_.key, secret_.job, options_.connect_timeout,
                        std::max(agents_.size() + 64, DataChannel::kMaxWaiting));
  loop_.emplace(*control_ctx_, *data_channel_);
}

void RootSession::step(milliseconds timeout) {
  progressed_ = loop_->turn(timeout, *this);
  // Refused connections close here, and handshakes past their deadline are dropped.
  control_admission_->expire(Clock::now());
  for (const auto& exit : launcher_.reap()) {
    // rank -1: the one launcher process that started every agent (srun, mpirun) ended.
    for (auto& agent : agents_) {
      if (agent.rank == 0 || (exit.rank >= 0 && agent.rank != exit.rank))
        continue;
      if (!agent.finished()) {
        agent_failed(agent, ExitCode::kTransferFailed,
                     exit.rank >= 0 ? fmt::format("its agent {} before finishing", exit.how)
                                    : fmt::format("the agent launcher ({}) {} before the agent "
                                                  "finished",
                                                  options_.agent_step.front(), exit.how));
      }
    }
  }
}

void RootSession::on_stop(int signal) {
  if (saying_goodbye_) {
    stop_during_goodbye_ = true;  // the outcome is decided; the agents are stopped right after
    return;
  }
  abort_setup(ExitCode::kTransferFailed,
              fmt::format("interrupted by signal {}; every temporary file was removed", signal));
}

void RootSession::abort_setup(ExitCode code, const std::string& reason) {
  tell_every_agent(Abort{reason});
  std::vector<tp::Completion> ignored;
  // Only to let the Abort messages leave; what comes back no longer matters, nor whether the
  // context can still poll (we throw right after).
  (void)control_ctx_->poll(ignored, milliseconds(50));
  launcher_.finish(milliseconds(3000));
  throw ImgcastError(code, reason);
}

void RootSession::say_goodbye() {
  tell_every_agent(Bye{});
  // Keep turning until the agents have gone, so the Bye messages actually leave.
  saying_goodbye_ = true;
  if (image_) {
    // Every node is done and nobody reads our copy again: its page tables go now, while the
    // agents exit (they wait for the Bye, so it leaves first), not after them at our own exit.
    step(milliseconds(0));
    image_->release_page_tables();
  }
  const auto deadline = Clock::now() + milliseconds(5000);
  // An agent's process ends right after its connection does, and no event tells us: a turn with
  // news starts the wait over at 1 ms, an idle one doubles it up to 20 ms, so the last exit is
  // reaped within a few ms (a cache hit's whole run is ~0.1 s) without spinning over the hosts.
  auto wait = milliseconds(1);
  while (launcher_.running() && !stop_during_goodbye_ && Clock::now() < deadline) {
    step(wait);
    wait = progressed_ ? milliseconds(1) : std::min(wait * 2, milliseconds(20));
  }
  launcher_.finish(milliseconds(1000));
}

Report RootSession::make_report(bool transfer) const {
  Report report;
  report.image_bytes = source_->size();
  if (tree_) {
    const TreeCounts counts = count_entries(tree_->tree().manifest);
    report.tree = TreeSummary{counts.files, counts.directories, counts.symlinks, counts.hardlinks,
                              counts.bytes};
  }
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
    // With --cache our entry was the transfer's source: our copy is the cache's, not sent.
    result.cached = agent.skipped || (agent.rank == 0 && cache_ && root_cache_);
    if (cache_ && result.destination.empty()) {
      result.destination = "(cache only)";
    }
    result.reparents = planner_ && agent.place > 0 ? planner_->reparents(agent.place) : 0;
    result.refetched = agent.refetched;
    result.transport = link_kinds_name(agent.link_kinds);
    report.nodes.push_back(std::move(result));
  }
  return report;
}

bool RootSession::all_agents(AgentRecord::State at_least, bool failed_counts) const {
  return std::all_of(agents_.begin() + 1, agents_.end(), [&](const AgentRecord& a) {
    if (a.dropped)
      return true;  // out of the transfer since the probe
    return a.state == AgentRecord::State::kFailed ? failed_counts : a.state >= at_least;
  });
}

std::string RootSession::hosts_in(AgentRecord::State state) const {
  std::vector<std::string> names;
  for (const auto& agent : agents_) {
    if (agent.rank != 0 && agent.state == state) {
      names.push_back(agent.host.empty() ? fmt::format("rank {}", agent.rank) : agent.host);
    }
  }
  return name_at_most(names);
}

}  // namespace imgcast::replicator
