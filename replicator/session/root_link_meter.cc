// RootSession's link measurement: while the other agents start and join, the root times its link
// with filler bursts to the first agent that joined (link_meter.h), so the plan's chunk size and
// topology come from a measured speed. --link-mbit skips it. With the root's own cache entry
// standing it waits for the probes, and times the link only if some node needs the image.
#include <fmt/format.h>

#include <algorithm>
#include <time.h>

#include "replicator/log.h"
#include "replicator/session/root_session.h"

namespace imgcast::replicator {

namespace {
// CPU time of the calling thread: the one that seals every burst.
std::chrono::nanoseconds thread_cpu() {
  timespec now{};
  (void)::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);  // cannot fail for this clock
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}
}  // namespace

void RootSession::start_link_meter(AgentRecord& agent) {
  if (!options_.measure_link || meter_tried_) {
    return;  // given by the user, or timed (or tried) already
  }
  meter_tried_ = true;
  if (data_ctx_->kind() != transport::Kind::kTcp) {
    // The control channel is TCP over whatever network the host names resolve to; an RDMA data
    // path is another link, often many times faster: timing one says nothing of the other.
    link_note_ = fmt::format("assumed: the data path runs on {}, not timed; pass --link-mbit",
                             transport::to_string(data_ctx_->kind()));
    return;
  }
  meter_.emplace(LinkMeter::Options{}, Clock::now());
  meter_cpu_ = {};
  meter_rank_ = agent.rank;
  filler_.assign(meter_->burst_bytes(), std::byte{0});
  send_bursts(agent);
}

void RootSession::send_bursts(AgentRecord& agent) {
  // Only the sealing and sending is counted: the other agents' joins also take this thread's
  // time meanwhile, and that did not slow the bursts.
  const auto cpu_before = thread_cpu();
  while (const auto index = meter_->next_to_send()) {
    tell(agent, Burst{*index, filler_});
  }
  meter_cpu_ += thread_cpu() - cpu_before;
}

void RootSession::on_burst_ack(AgentRecord& agent, const BurstAck& ack) {
  if (!meter_) {
    return;  // an answer to a burst sent before the measurement ended
  }
  const auto now = Clock::now();
  (void)meter_->answered(ack.index, now);  // out of order: not counted, the meter times the rest
  if (meter_->done(now)) {
    finish_link_meter();
  } else {
    send_bursts(agent);
  }
}

void RootSession::check_link_meter() {
  if (meter_ && (meter_->done(Clock::now()) || agents_[meter_rank_].finished())) {
    finish_link_meter();
  }
}

void RootSession::finish_link_meter() {
  const auto now = Clock::now();
  const auto took = std::max<long>(1, meter_->elapsed(now).count() / 1000);
  const auto rate = meter_->bytes_per_second();
  if (!rate) {
    link_note_ = fmt::format("assumed: {} did not answer the link bursts within {} ms",
                             agents_[meter_rank_].host, took);
  } else if (meter_->cpu_bound(meter_cpu_, now) &&
             *rate < link_.beta_bytes_per_second) {
    // Sealing the bursts, not the link, set the pace: the link is faster than this, by how much
    // the bursts cannot tell.
    link_note_ = fmt::format(
        "assumed: at least {:.2f} Gbit/s measured in {} ms, but the root's CPU set that pace",
        *rate * 8 / 1e9, took);
  } else {
    link_.beta_bytes_per_second = *rate;
    link_note_ = fmt::format("measured in {} ms", took);
  }
  log().info("link: {:.2f} Gbit/s, {}", link_.beta_bytes_per_second * 8 / 1e9, link_note_);
  meter_.reset();
  filler_ = {};
  AgentRecord& agent = agents_[meter_rank_];
  if (probe_held_ && !agent.finished()) {
    tell(agent, *probe_);
  }
  probe_held_ = false;
}

void RootSession::settle_link_meter() {
  if (!meter_ && cache_ && root_cache_) {
    // Our own cache entry stands, so the agents' answers are likely hits: the link was not timed
    // while they joined (a run where every node has the image needs no figure, and the bursts
    // would take CPU from their start). A run that does need it times it now, to a node that
    // needs the image.
    for (auto& agent : agents_) {
      const bool hit = agent.cached && *agent.cached == root_cache_->digest;
      if (agent.rank != 0 && agent.control && !agent.finished() && !hit) {
        start_link_meter(agent);
        break;
      }
    }
  }
  // A transfer needs the figure: wait for it (the meter gives up within its own bound).
  while (meter_) {
    step(std::chrono::milliseconds(20));
    check_link_meter();
  }
}

}  // namespace imgcast::replicator
