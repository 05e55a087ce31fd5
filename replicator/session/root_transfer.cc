// RootSession's transfer: the loop that feeds the tree from the source until every node is done,
// places the root's own copy, reports progress, gives up on nodes that make none, and re-parents
// orphans (ReparentPlanner decides, this file tells the agents).
#include <fmt/format.h>

#include <algorithm>

#include "replicator/log.h"
#include "replicator/session/placement.h"
#include "replicator/session/tree_placement.h"
#include "replicator/session/root_session.h"

namespace imgcast::replicator {

using std::chrono::milliseconds;

void RootSession::run_transfer() {
  data_start_ = Clock::now();
  node_->use_source(*source_);
  loop_->hurry();  // its first pump lets the reader go; no sleeping before it
  if (tree_) {
    // Our tree is written as the source is read into its stream (stream_progress.h).
    placing_.emplace([this] {
      (void)place_tree_as_it_arrives(*image_, tree_destination(agents_[0].destination), job_tag_,
                                     options_.follow_symlinks, source_key_, tree_stream_);
    });
  }
  log().debug("all {} nodes ready after {:.3f}s; data flows", agents_.size(),
              seconds_between(start_, data_start_));
  auto last_progress = data_start_;
  std::uint64_t last_bytes = 0;
  auto last_report = data_start_;
  auto last_adoption_check = data_start_;
  for (;;) {
    // While our copy is placed on its own thread, a short turn notices the end soon.
    step(placing_ ? milliseconds(5) : milliseconds(200));
    if (const auto& failure = node_->failure()) {
      // The root's own copy is the source of everything: without it nobody can finish.
      tell_every_agent(Abort{*failure});
      throw TransferError(fmt::format("{} (root): {}", agents_[0].host, *failure));
    }
    if (tree_) {
      tree_stream_.verified(node_->bytes_verified());
    }
    if (node_->complete() && !root_copy_done_) {
      place_root_copy();
    }
    if (placing_ && placing_->done()) {
      finish_root_copy();
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
        if (agent.rank != 0 && !agent.finished()) {
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
    if (std::all_of(agents_.begin(), agents_.end(),
                    [](const AgentRecord& a) { return a.finished(); })) {
      data_end_ = Clock::now();
      return;
    }
  }
}

void RootSession::place_root_copy() {
  root_copy_done_ = true;
  node_->stop_pages();  // before the cache record pins the file's mtime
  const ImageDigest digest = node_->digest();
  // Every agent waits for the digest to place its own copy: it goes now, and our copy is placed
  // meanwhile, on its own thread, while the loop keeps serving our children
  // (background_placement.h). Not a node whose cached copy stood: it was done at its Skip.
  for (auto& agent : agents_) {
    if (agent.rank != 0 && agent.control && !agent.skipped) {
      tell(agent, Finish{digest});
    }
  }
  if (tree_) {
    tree_stream_.confirm(digest);  // its placement, under way since the start, may finish
    return;
  }
  placing_.emplace([this, digest] {
    if (cache_) {
      cache_->place(*image_, digest);
    } else {
      place_copy(*image_, source_key_, digest);
    }
  });
}

void RootSession::finish_root_copy() {
  std::exception_ptr failed;
  try {
    placing_->get();
  } catch (...) {
    failed = std::current_exception();
  }
  placing_.reset();
  if (failed) {
    std::rethrow_exception(failed);  // a copy that could not be placed fails the run, as before
  }
  agents_[0].state = AgentRecord::State::kDone;
  agents_[0].seconds = seconds_between(data_start_, Clock::now());
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

void RootSession::on_orphaned(AgentRecord& orphan, int tree, const std::string& reason) {
  const ReparentPlanner::Decision decision = planner_->orphaned(orphan.place, tree, Clock::now());
  if (decision.kind == ReparentPlanner::Decision::Kind::kGiveUp) {
    const std::string why = fmt::format("lost its parent {} times (last: {})",
                                        planner_->reparents(orphan.place) - 1, reason);
    tell(orphan, Abort{why});
    agent_failed(orphan, ExitCode::kTransferFailed, why);
    return;
  }
  const int adopter_rank = participants_[decision.adopter];
  log().warn("{} (rank {}) lost its parent rank {}{} ({}); rank {} adopts it", orphan.host,
             orphan.rank, participants_[decision.lost],
             planner_->trees() > 1 ? fmt::format(" in tree {}", tree) : std::string(), reason,
             adopter_rank);
  if (decision.kind == ReparentPlanner::Decision::Kind::kRootAdopts) {
    node_->adopt(orphan.place, tree);
    send_reparent(orphan, tree, 0);
    return;
  }
  tell(agents_[adopter_rank],
       Adopt{static_cast<std::uint32_t>(orphan.place), static_cast<std::uint8_t>(tree)});
}

void RootSession::on_adopted(AgentRecord& adopter, const Adopted& adopted) {
  // The answer to our Adopt: now the orphan may connect (before it, it would be refused).
  if (!planner_ || adopted.data_rank >= participants_.size()) {
    return;
  }
  AgentRecord& orphan = agents_[participants_[adopted.data_rank]];
  if (orphan.state == AgentRecord::State::kReady &&
      planner_->adopted(adopter.place, orphan.place, adopted.tree)) {
    send_reparent(orphan, adopted.tree, adopter.rank);
  }
}

void RootSession::send_reparent(AgentRecord& orphan, int tree, int parent_rank) {
  Reparent reparent;
  reparent.tree = static_cast<std::uint8_t>(tree);
  reparent.parent_rank = static_cast<std::uint32_t>(parent_rank);
  reparent.parent_address = data_address_of(parent_rank);
  tell(orphan, reparent);
}

void RootSession::check_adoptions(Clock::time_point now) {
  if (!planner_) {
    return;
  }
  for (const auto& retry : planner_->overdue(now)) {
    AgentRecord& orphan = agents_[participants_[retry.orphan]];
    if (orphan.state != AgentRecord::State::kReady) {
      continue;
    }
    // on_orphaned passes over the silent adopter (it is the orphan's parent of record now).
    on_orphaned(orphan, retry.tree,
                fmt::format("rank {}, chosen to adopt it, did not answer for {:.1f} s",
                            participants_[retry.adopter], options_.stall_timeout.count() / 1000.0));
  }
}

std::vector<std::byte> RootSession::data_address_of(int rank) const {
  if (rank == 0) {
    const auto address = data_listener_->address();
    return {address.begin(), address.end()};
  }
  return agents_[rank].data_address;
}

}  // namespace imgcast::replicator
