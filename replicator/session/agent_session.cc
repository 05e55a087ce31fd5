#include "replicator/session/agent_session.h"

#include <fmt/format.h>

#include "replicator/image/destination.h"
#include "replicator/log.h"
#include "replicator/session/listen_address.h"
#include "replicator/session/placement.h"
#include "replicator/session/tree_placement.h"
#include "transport/error.h"

namespace imgcast::replicator {

namespace tp = transport;

AgentSession::AgentSession(const AgentOptions& options, const JobSecret& secret,
                           const ContextFactory& make_context)
    : options_(options),
      secret_(secret),
      control_ctx_(make_context(tp::Kind::kTcp, control_context_options())),
      data_ctx_(make_context(secret.transport, data_context_options(secret.transport_fallback))) {}

AgentSession::~AgentSession() { tree_stream_.fail(); }  // before placing_ joins its thread

ExitCode AgentSession::run() {
  tp::ListenOptions listen;
  listen.advertise_host = options_.advertise_host.empty() ? options_.host : options_.advertise_host;
  listen.port = options_.data_port;
  listen.advertise_port = options_.advertise_port;
  // Its own name's address, not the advertised one: that may be a proxy's.
  listen.bind_host = bind_address_for(options_.host, options_.bind_any);
  data_listener_ = listen_on(*data_ctx_, listen);
  data_channel_.emplace(*data_ctx_, secret_.key, secret_.job, options_.connect_timeout);
  loop_.emplace(*control_ctx_, *data_channel_);
  control_ = control_ctx_->connect(
      std::span(reinterpret_cast<const std::byte*>(options_.control_address.data()),
                options_.control_address.size()),
      options_.connect_timeout);
  handshake_.emplace(secret_.key, secret_.job, Channel::kControl,
                     static_cast<std::uint32_t>(options_.rank));
  if (!control_->send_control(encode(handshake_->hello())).is_ok()) {
    log().error("rank {}: lost the root at {} during the handshake", options_.rank,
                options_.control_address);
    return ExitCode::kTransferFailed;
  }
  while (!exit_) {
    // While the copy is placed on its own thread, a short turn notices the end soon.
    loop_->turn(std::chrono::milliseconds(placing_ ? 5 : 200), *this);
    if (node_ && !exit_) {
      check_done();
    }
  }
  return *exit_;
}

void AgentSession::on_control_event(tp::Completion& event) {
  if (exit_) {
    return;  // decided: the rest of the batch changes nothing
  }
  if (auto* arrived = std::get_if<tp::ControlArrived>(&event)) {
    if (!seal_) {
      on_unproven_message(arrived->bytes);
      return;
    }
    const std::optional<Message> message = seal_->open(arrived->bytes);
    if (!message) {
      // The root seals everything it sends: this was altered on the way, or is not the root's.
      log().error(
          "rank {}: a message on the control channel from {} failed its integrity "
          "check (altered or forged on the way); refusing it",
          options_.rank, options_.control_address);
      exit_ = ExitCode::kSecurity;
      return;
    }
    on_root_message(*message);
  } else if (std::holds_alternative<tp::PeerFailed>(event)) {
    // The root is gone: nobody can use our copy any more, so the temporary file goes (with
    // image_, as the session ends).
    log().error("rank {}: lost the root at {}; removing the partial copy", options_.rank,
                options_.control_address);
    if (image_) {
      image_->discard();  // now, not at the end of teardown: nothing may stop us before that
    }
    exit_ = ExitCode::kTransferFailed;
  }
}

void AgentSession::on_stop(int signal) {
  report_failure(ExitCode::kTransferFailed, fmt::format("agent interrupted by signal {}", signal));
}

void AgentSession::on_unproven_message(std::span<const std::byte> bytes) {
  // Until the root has proved it holds the job key, the one message we act on is its Challenge:
  // whoever listens at the control address (a stale port taken over, a fake root) gets no
  // further than that.
  const std::optional<Message> message = decode(bytes);
  if (message) {
    if (const auto* challenge = std::get_if<Challenge>(&*message)) {
      on_challenge(*challenge);
      return;
    }
  }
  log().error("rank {}: {} sent {} before proving it holds the job key; refusing it", options_.rank,
              options_.control_address,
              message ? message_name(*message) : std::string("a malformed message"));
  exit_ = ExitCode::kSecurity;
}

void AgentSession::on_root_message(const Message& message) {
  // Every message here is the authenticated root's; each still acts only in its turn.
  if (const auto* probe = std::get_if<Probe>(&message);
      probe != nullptr && phase_ == Phase::kJoined) {
    phase_ = Phase::kProbed;
    on_probe(*probe);
    return;
  }
  if (const auto* burst = std::get_if<Burst>(&message);
      burst != nullptr && (phase_ == Phase::kJoined || phase_ == Phase::kProbed)) {
    tell_root(BurstAck{burst->index});  // the root times its link by these (link_meter.h)
    return;
  }
  if (std::holds_alternative<Skip>(message) && phase_ == Phase::kProbed && cached_) {
    // Our cached copy stands: done, without data.
    phase_ = Phase::kSkipped;
    tell_root(Result{0});
    reported_ = true;
    skipped_ = true;
    return;
  }
  if (const auto* plan = std::get_if<Plan>(&message); plan != nullptr && phase_ == Phase::kProbed) {
    phase_ = Phase::kPlanned;
    on_plan(*plan);
    return;
  }
  if (const auto* adopt = std::get_if<Adopt>(&message); adopt != nullptr && node_) {
    on_adopt(*adopt);
    return;
  }
  if (const auto* reparent = std::get_if<Reparent>(&message); reparent != nullptr && node_) {
    on_reparent(*reparent);
    return;
  }
  if (const auto* finish = std::get_if<Finish>(&message);
      finish != nullptr && phase_ == Phase::kPlanned && !expected_digest_) {
    expected_digest_ = finish->digest;
    return;
  }
  if (std::holds_alternative<Bye>(message)) {
    exit_ = reported_ && (skipped_ || placed_) ? ExitCode::kSuccess : ExitCode::kTransferFailed;
    return;
  }
  if (const auto* abort = std::get_if<Abort>(&message)) {
    log().warn("rank {}: the root aborted the transfer: {}", options_.rank, abort->reason);
    exit_ = ExitCode::kTransferFailed;
    return;
  }
  log().error("rank {}: unexpected {} from the root", options_.rank, message_name(message));
  exit_ = ExitCode::kTransferFailed;
}

void AgentSession::on_challenge(const Challenge& challenge) {
  const std::optional<Proof> proof = handshake_->answer(challenge);
  if (!proof) {
    log().error("rank {}: the root at {} failed authentication; refusing it", options_.rank,
                options_.control_address);
    exit_ = ExitCode::kSecurity;
    return;
  }
  control_->trust();  // the root proved itself: its messages may be as large as a plan needs
  // The proof is the handshake's last unsealed message; everything after it is sealed.
  (void)control_->send_control(encode(*proof));  // a failure comes back as PeerFailed
  seal_.emplace(handshake_->seal(challenge));
  phase_ = Phase::kJoined;
  const auto address = data_listener_->address();
  tell_root(Join{{address.begin(), address.end()}, options_.host});
}

void AgentSession::on_probe(const Probe& probe) {
  probe_ = probe;
  source_key_ = probe.source_key;
  Probed answer;
  try {
    const std::string destination =
        expand_destination(probe.destination, options_.rank, options_.host);
    const std::filesystem::path dst = tree_destination(destination);
    std::optional<CacheRecord> tree_record;
    if (probe.tree != 0) {
      tree_record = find_cached_tree(dst, probe.source_key, probe.image_bytes, probe.force != 0,
                                     probe.follow_symlinks != 0);
    }
    if (tree_record) {
      answer.cached = 1;
      answer.digest = tree_record->digest;
      cached_ = true;
    } else if (probe.tree != 0) {
      // DST must be free or an earlier copy before data moves. The stream is staged in memory,
      // or under a staging name beside DST when it is too large (stage_tree_stream()).
      (void)check_tree_destination(dst, probe.follow_symlinks != 0);
      image_.emplace(
          stage_tree_stream(dst, probe.image_bytes, probe.job_tag, probe.follow_symlinks != 0));
    } else if (!probe.cache_dir.empty()) {
      CacheTarget target;
      target.cache_dir = expand_destination(probe.cache_dir, options_.rank, options_.host);
      target.budget = probe.cache_budget;
      target.destination = destination;
      target.mode = static_cast<mode_t>(probe.mode);
      target.follow_symlinks = probe.follow_symlinks != 0;
      target.job_tag = probe.job_tag;
      target.source_key = probe.source_key;
      target.source_path = probe.source_path;
      target.keep_pin = options_.keep_cache_pin;
      cache_.emplace(std::move(target));
      if (const auto digest = cache_->find(probe.image_bytes, probe.force != 0)) {
        answer.cached = 1;
        answer.digest = *digest;
        cached_ = true;
      } else {
        image_.emplace(cache_->stage(probe.image_bytes, StagedImage::Reserve::kNow));
      }
    } else if (const auto record =
                   find_cached_copy(destination, probe.source_key, probe.image_bytes,
                                    probe.force != 0, probe.follow_symlinks != 0)) {
      answer.cached = 1;
      answer.digest = record->digest;
      cached_ = true;
    } else {
      // Stage now: a missing, unwritable or full destination fails this node alone, before
      // the plan is made and any data moves.
      image_.emplace(StagedImage::create(destination, probe.image_bytes, probe.job_tag,
                                         static_cast<mode_t>(probe.mode),
                                         probe.follow_symlinks != 0));
    }
  } catch (const ImgcastError& error) {
    report_failure(error.code(), error.what());
    return;
  }
  tell_root(answer);
}

void AgentSession::on_plan(const Plan& plan) {
  plan_time_ = Clock::now();
  stall_timeout_ = std::chrono::milliseconds(plan.stall_timeout_ms);
  try {
    topology_ = make_topology(plan.topology, static_cast<int>(plan.job_size), 0);
    if (!image_) {
      throw TransferError("got a plan for a node whose copy was cached (no file staged)");
    }
    // The file was staged for what the probe said; a plan for anything else is not ours to
    // follow (docs/security.md).
    if (plan.image_bytes != probe_.image_bytes || plan.mode != probe_.mode ||
        plan.destination != probe_.destination || plan.job_tag != probe_.job_tag ||
        plan.tree != probe_.tree) {
      throw SecurityError(
          "the plan does not agree with the probe (image size, mode, destination, "
          "job tag or tree flag differ)");
    }
    DataNodeOptions node_options;
    node_options.rank = static_cast<int>(plan.data_rank);
    node_options.topology = topology_.get();
    node_options.image_bytes = plan.image_bytes;
    node_options.chunk_bytes = plan.chunk_bytes;
    node_options.key = &secret_.key;
    node_options.job = secret_.job;
    if (plan.parents.size() != static_cast<std::size_t>(topology_->trees())) {
      throw InputError(fmt::format("the plan names {} parents for a {}-tree topology",
                                   plan.parents.size(), topology_->trees()));
    }
    node_ = &data_channel_->start(node_options, *image_);
    orphan_reported_.assign(plan.parents.size(), false);
    if (probe_.tree != 0) {
      start_tree_placement();
    }
  } catch (const ImgcastError& error) {
    report_failure(error.code(), error.what());
    return;
  } catch (const tp::Error& error) {
    report_failure(ExitCode::kTransferFailed, error.what());
    return;
  } catch (const std::invalid_argument& error) {
    report_failure(ExitCode::kUsage, error.what());
    return;
  }
  for (std::size_t tree = 0; tree < plan.parents.size(); ++tree) {
    const PlanParent& parent = plan.parents[tree];
    try {
      node_->connect_to_parent(static_cast<int>(tree), parent.address, options_.connect_timeout,
                               fmt::format("parent rank {}", parent.rank));
    } catch (const tp::Error& error) {
      // The parent may have died already: the root finds us another one (check_done reports it).
      node_->abandon_parent(static_cast<int>(tree), error.what());
    }
  }
  tell_root(Ready{});
}

void AgentSession::on_adopt(const Adopt& adopt) {
  if (adopt.tree >= node_->trees()) {
    log().error("rank {}: the root asked to adopt a child in tree {} of {}", options_.rank,
                adopt.tree, node_->trees());
    exit_ = ExitCode::kTransferFailed;
    return;
  }
  node_->adopt(static_cast<int>(adopt.data_rank), adopt.tree);
  tell_root(Adopted{adopt.data_rank, adopt.tree});
}

void AgentSession::on_reparent(const Reparent& reparent) {
  const int tree = reparent.tree;
  if (tree >= node_->trees() || !node_->orphaned(tree)) {
    return;  // not an orphan there (any more): nothing to do
  }
  const std::string name = fmt::format("parent rank {}", reparent.parent_rank);
  log().info("rank {}: re-attaching to {} from chunk {}{}", options_.rank, name,
             node_->chunks_verified(),
             node_->trees() > 1 ? fmt::format(" (tree {})", tree) : std::string());
  orphan_reported_[tree] = false;
  try {
    node_->reparent(tree, reparent.parent_address, options_.connect_timeout, name);
  } catch (const tp::Error& error) {
    node_->abandon_parent(tree, error.what());
  }
}

void AgentSession::check_done() {
  if (reported_) {
    return;
  }
  if (const auto& failure = node_->failure()) {
    report_failure(ExitCode::kTransferFailed, *failure);
    return;
  }
  const auto now = Clock::now();
  // A parent that is alive but sends nothing (stopped, or its link is cut) is given up on.
  if (stall_timeout_.count() > 0) {
    node_->abandon_silent_parents(now, stall_timeout_);
  }
  for (int tree = 0; tree < node_->trees(); ++tree) {
    // No parent there: we keep serving our children from what we have; the root picks a new one.
    if (const auto& orphaned = node_->orphaned(tree); orphaned && !orphan_reported_[tree]) {
      orphan_reported_[tree] = true;
      tell_root(Orphaned{static_cast<std::uint8_t>(tree), node_->chunks_verified(), *orphaned});
    }
  }
  if (node_->bytes_verified() != last_bytes_) {
    last_bytes_ = node_->bytes_verified();
    // A few progress reports a second feed the root's progress line; not one per chunk.
    if (now - last_progress_report_ >= std::chrono::milliseconds(250)) {
      last_progress_report_ = now;
      tell_root(Progress{last_bytes_});
    }
  }
  if (placing_ && placing_->done()) {
    finish_placement(now);  // a tree's may end before the stream does: a failure
    return;
  }
  tree_stream_.verified(node_->bytes_verified());
  if (confirmed_ || !node_->complete() || !expected_digest_) {
    return;
  }
  // freeze(): no more writes, then the whole mapping hashed again as it lies (data_node.h).
  const ImageDigest frozen = node_->freeze();
  if (frozen != *expected_digest_) {
    report_failure(ExitCode::kTransferFailed,
                   fmt::format("whole-image xxh3-128 {} does not match the source's {}",
                               frozen.to_hex(), expected_digest_->to_hex()));
    return;
  }
  confirmed_ = true;
  if (probe_.tree != 0) {
    tree_stream_.confirm(frozen);  // its placement, under way since the plan, may finish
    return;
  }
  // On its own thread: our children may still wait for the last chunks (background_placement.h).
  placing_.emplace([this, frozen] {
    if (cache_) {
      cache_->place(*image_, frozen);
    } else {
      place_copy(*image_, source_key_, frozen);
    }
  });
}

void AgentSession::start_tree_placement() {
  placing_.emplace([this] {
    const std::string destination =
        expand_destination(probe_.destination, options_.rank, options_.host);
    (void)place_tree_as_it_arrives(*image_, tree_destination(destination), probe_.job_tag,
                                   probe_.follow_symlinks != 0, source_key_, tree_stream_);
  });
}

void AgentSession::finish_placement(Clock::time_point now) {
  try {
    placing_->get();
  } catch (const ImgcastError& error) {
    placing_.reset();
    report_failure(error.code(), error.what());
    return;
  }
  placing_.reset();
  placed_ = true;
  const auto busy = std::chrono::duration_cast<std::chrono::nanoseconds>(now - plan_time_);
  tell_root(
      Result{static_cast<std::uint64_t>(busy.count()), node_->refetched(), node_->link_kinds()});
  reported_ = true;
  log().debug("rank {}: verified and placed {}", options_.rank,
              expand_destination(probe_.destination, options_.rank, options_.host));
}

void AgentSession::report_failure(ExitCode code, const std::string& reason) {
  tree_stream_.fail();  // a tree's placement waiting for bytes stops, and removes what it built
  placing_.reset();     // waits for a placement under way: the staged copy is its until it ends
  if (image_) {
    image_->discard();
  }
  if (!reported_ && control_) {
    tell_root(Failed{static_cast<std::uint8_t>(code), reason});
    // Give the message a moment to leave before the sockets close with the process; what
    // comes back no longer matters.
    std::vector<tp::Completion> ignored;
    (void)control_ctx_->poll(ignored, std::chrono::milliseconds(50));
  }
  reported_ = true;
  // A failed node leaves at once: its children see the connection drop and report too.
  exit_ = code;
}

void AgentSession::tell_root(const Message& message) {
  if (!seal_) {
    return;  // the root never proved itself: it is told nothing
  }
  // A send that fails leaves the endpoint's failure latched, and the transport reports it as
  // PeerFailed at the next poll: the agent then gives up (the root is gone).
  (void)control_->send_control(seal_->seal(message));
}

}  // namespace imgcast::replicator
