// RootSession's setup: the agents start, join, check their caches and stage their files, and
// get their plans; the root stages its own copy alongside.
#include <fmt/format.h>

#include <algorithm>

#include "replicator/log.h"
#include "replicator/session/agent_command_line.h"
#include "replicator/session/root_session.h"
#include "replicator/session/tree_placement.h"

namespace imgcast::replicator {

void RootSession::launch_agents() {
  const std::string control = control_listener_->name();
  if (options_.publish) {
    options_.publish(control, secret_.to_line());
    return;
  }
  const AgentProgram program{options_.agent_program, options_.agent_args};
  if (!options_.agent_step.empty()) {
    launcher_.launch_step(agent_step_argv(options_.agent_step, program, control, options_.hosts),
                          kSecretVariable, secret_.to_line());
    return;
  }
  for (std::size_t rank = 1; rank < agents_.size(); ++rank) {
    const int r = static_cast<int>(rank);
    launcher_.launch(r, agents_[rank].host,
                     agent_shell_command(program, control, r, agents_[rank].host),
                     secret_.to_line());
  }
}

void RootSession::wait_for(Phase phase) {
  const auto target = phase == Phase::kJoining   ? AgentRecord::State::kJoined
                      : phase == Phase::kProbing ? AgentRecord::State::kProbed
                                                 : AgentRecord::State::kReady;
  const auto start = Clock::now();
  auto deadline = start + options_.connect_timeout;
  if (phase == Phase::kProbing && !options_.force) {
    // A node with a cached copy re-reads it whole to confirm it (placement.h) before it answers:
    // give it time for that at a slow disk's 100 MB/s, so a large cached image is not a timeout.
    deadline += std::chrono::milliseconds(source_->size() / 100'000);
  }
  // Before the plan, a node that fails (its agent could not be started or exited, its
  // destination is missing, unwritable or full) or does not join or answer in time drops out
  // alone: no data has moved, and the tree is planned over the others. Once planned, the tree
  // counts on every node: a failure stops the setup.
  const bool before_plan = phase == Phase::kJoining || phase == Phase::kProbing;
  auto last_report = Clock::time_point{};
  while (!all_agents(target, before_plan)) {
    step(meter_ ? std::chrono::milliseconds(20) : std::chrono::milliseconds(200));
    check_link_meter();
    if (options_.on_progress && Clock::now() - last_report >= std::chrono::milliseconds(250)) {
      last_report = Clock::now();
      report_setup_progress(phase, target);
    }
    for (const auto& agent : agents_) {
      if (agent.state == AgentRecord::State::kFailed && !before_plan && !agent.dropped) {
        abort_setup(agent.failure_code,
                    fmt::format("{} (rank {}): {}", agent.host, agent.rank, agent.failure));
      }
    }
    if (Clock::now() > deadline) {
      const auto state = phase == Phase::kJoining   ? AgentRecord::State::kLaunched
                         : phase == Phase::kProbing ? AgentRecord::State::kJoined
                                                    : AgentRecord::State::kProbed;
      const std::string why = fmt::format(
          "timed out after {} ms waiting for {} to {} ({})",
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - start).count(),
          before_plan ? "its agent" : fmt::format("the agent on {}", hosts_in(state)),
          phase == Phase::kJoining   ? "join"
          : phase == Phase::kProbing ? "check its cached copy"
                                     : "get ready",
          options_.publish ? "did the launcher start imgcast hook on every node, and do they "
                             "share the rendezvous directory?"
                           : "is the host reachable, and can the launcher start imgcast there?");
      if (!before_plan) {
        abort_setup(ExitCode::kTransferFailed, why);
      }
      for (auto& agent : agents_) {
        if (agent.rank != 0 && agent.state == state) {
          if (agent.control) {
            tell(agent, Abort{why});  // it stops and removes what it staged
          }
          agent_failed(agent, ExitCode::kTransferFailed, why);
          launcher_.stop(agent.rank);
        }
      }
      return;
    }
  }
}

void RootSession::report_setup_progress(Phase phase, AgentRecord::State target) {
  ProgressSnapshot snapshot;
  snapshot.image_bytes = source_->size();
  snapshot.setup_step = phase == Phase::kJoining   ? "joined"
                        : phase == Phase::kProbing ? "checked and reserved their destination"
                                                   : "got their plan";
  snapshot.setup_seconds = seconds_between(start_, Clock::now());
  for (const auto& agent : agents_) {
    snapshot.bytes_verified.push_back(0);
    snapshot.hosts.push_back(agent.host);
    snapshot.failed += agent.state == AgentRecord::State::kFailed;
    snapshot.setup_reached +=
        agent.rank != 0 && agent.state != AgentRecord::State::kFailed && agent.state >= target;
  }
  options_.on_progress(snapshot);
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
  probe.tree = tree_ ? 1 : 0;
  if (options_.cache) {
    probe.cache_dir = options_.cache->dir.string();
    probe.cache_budget = options_.cache->budget;
    probe.source_path = cache_source_path_;
  }
  probe_ = probe;
  for (auto& agent : agents_) {
    if (agent.rank == 0 || !agent.control) {
      continue;
    }
    // Held while the link is timed (with our own cache entry standing it is not timed yet:
    // settle_link_meter).
    if (meter_ && agent.rank == meter_rank_) {
      probe_held_ = true;  // finish_link_meter() sends it
      continue;
    }
    tell(agent, probe);
  }
}

bool RootSession::choose_participants() {
  settle_link_meter();
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
      tell(agent, Skip{});
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
    schedule_ =
        choose_schedule(size, source_->size(), options_.topology, options_.chunk_bytes, link_);
    topology_ = make_topology(schedule_.topology, size, 0);
  } catch (const std::invalid_argument& error) {
    throw InputError(error.what());
  }
  if (!options_.topology || !options_.chunk_bytes) {
    schedule_.reason += fmt::format(" (link speed {})", link_note_);
  }
  log().info("plan: {}", schedule_.reason);
  if (!image_) {
    // Our copy was cached but others need the image: we stage it again as their source (and
    // place it again: the same bytes).
    if (cache_) {
      image_.emplace(cache_->stage(source_->size(), StagedImage::Reserve::kNow));
    } else if (tree_) {
      image_.emplace(stage_tree_stream(tree_destination(agents_[0].destination), source_->size(),
                                       job_tag_, options_.follow_symlinks));
    } else {
      image_.emplace(StagedImage::create(agents_[0].destination, source_->size(), job_tag_,
                                         options_.mode, options_.follow_symlinks));
    }
  }
  DataNodeOptions node_options;
  node_options.rank = 0;
  node_options.topology = topology_.get();
  node_options.image_bytes = source_->size();
  node_options.chunk_bytes = schedule_.chunk_bytes;
  node_options.key = &secret_.key;
  node_options.job = secret_.job;
  node_ = &data_channel_->start(node_options, *image_);
  // Its children may connect from now on; it has nothing to send them until run_transfer()
  // gives it the source, once every node is ready.
}

void RootSession::send_plans() {
  planner_.emplace(*topology_, options_.stall_timeout);
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
    plan.topology = topology_->name();
    plan.destination = options_.destination;
    plan.job_tag = job_tag_;
    plan.tree = tree_ ? 1 : 0;
    for (int tree = 0; tree < topology_->trees(); ++tree) {
      const int parent = participants_[planner_->parent(static_cast<int>(place), tree)];
      plan.parents.push_back({static_cast<std::uint32_t>(parent), data_address_of(parent)});
    }
    tell(agents_[rank], plan);
  }
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

}  // namespace imgcast::replicator
