#include "replicator/protocol/admission.h"

#include <fmt/format.h>

#include <algorithm>

#include "replicator/log.h"

namespace imgcast::replicator {

namespace tp = transport;

namespace {

// The address a peer connects from, without its port: "10.1.2.3" of "10.1.2.3:40000", "[::1]"
// of "[::1]:40000". A name with no port of this form (another backend's) is its own address.
std::string host_of(const std::string& peer) {
  if (!peer.empty() && peer.front() == '[') {
    return peer.substr(0, peer.find(']') + 1);  // npos + 1 == 0: no bracket, the whole name
  }
  const auto colon = peer.find(':');
  if (colon == std::string::npos || peer.find(':', colon + 1) != std::string::npos) {
    return peer;
  }
  return peer.substr(0, colon);
}

}  // namespace

struct Admission::Waiting {
  enum class Step { kHello, kProof, kIntroduction, kAdmitted };
  Waiting(std::unique_ptr<tp::Endpoint> e, std::string from, const Options& options,
          Clock::time_point until)
      : endpoint(std::move(e)),
        host(std::move(from)),
        handshake(*options.key, options.job, options.channel),
        deadline(until) {}
  std::unique_ptr<tp::Endpoint> endpoint;
  std::string host;  // host_of(its peer name)
  ResponderHandshake handshake;
  Clock::time_point deadline;
  Step step = Step::kHello;
  std::optional<Message> introduction;
  std::optional<MessageSeal> seal;  // from the proof on, on a sealed channel
};

Admission::Admission(Options options) : options_(std::move(options)) {}

Admission::~Admission() { report_held_back(refusal_log_.take_all()); }

bool Admission::handle(tp::Completion& event) {
  if (auto* accepted = std::get_if<tp::PeerAccepted>(&event)) {
    accept(std::move(accepted->endpoint));
    return true;
  }
  tp::Endpoint* from = nullptr;
  if (auto* arrived = std::get_if<tp::ControlArrived>(&event)) {
    from = arrived->from;
  } else if (auto* failed = std::get_if<tp::PeerFailed>(&event)) {
    from = failed->peer;
  } else {
    return false;  // writes come only from peers an owner already serves
  }
  const auto it = by_endpoint_.find(from);
  if (it == by_endpoint_.end()) {
    // Refused in this batch: its late events are ours to ignore.
    return std::any_of(retired_.begin(), retired_.end(),
                       [from](const auto& e) { return e.get() == from; });
  }
  if (auto* arrived = std::get_if<tp::ControlArrived>(&event)) {
    on_message(*it->second, arrived->bytes);
    return true;
  }
  // Hung up before it was served: nothing to tell anyone.
  log().debug("{} connection from {} closed before it was served: {}", channel_name(),
              from->peer_name(), std::get<tp::PeerFailed>(event).status.to_string());
  drop(from, {});
  return true;
}

void Admission::accept(std::unique_ptr<tp::Endpoint> endpoint) {
  std::string host = host_of(endpoint->peer_name());
  const std::size_t per_host = std::max<std::size_t>(options_.max_waiting_per_address, 1);
  if (unproven_from(host) >= per_host) {
    // Its own oldest makes room, not someone else's (the count says there is one).
    const auto oldest = std::find_if(waiting_.begin(), waiting_.end(), [&](const auto& w) {
      return w->step != Waiting::Step::kAdmitted && w->host == host;
    });
    if (oldest != waiting_.end()) {
      drop((*oldest)->endpoint.get(),
           fmt::format("had not proved itself when {} connections from {} were waiting", per_host,
                       host));
    }
  }
  if (waiting_.size() >= options_.max_waiting) {
    const auto oldest = std::find_if(waiting_.begin(), waiting_.end(), [](const auto& w) {
      return w->step != Waiting::Step::kAdmitted;
    });
    if (oldest == waiting_.end()) {
      // Every slot holds a proven peer its owner has not taken yet: the newcomer waits its turn
      // by reconnecting.
      log_refusal(*endpoint,
                  fmt::format("{} proven peers already wait to be served", waiting_.size()));
      retired_.push_back(std::move(endpoint));
      return;
    }
    drop((*oldest)->endpoint.get(),
         fmt::format("had not proved itself when {} connections were waiting", waiting_.size()));
  }
  tp::Endpoint* raw = endpoint.get();
  ++unproven_by_host_[host];
  waiting_.push_back(std::make_unique<Waiting>(std::move(endpoint), std::move(host), options_,
                                               Clock::now() + options_.deadline));
  by_endpoint_[raw] = waiting_.back().get();
}

std::size_t Admission::unproven_from(const std::string& host) const {
  const auto it = unproven_by_host_.find(host);
  return it == unproven_by_host_.end() ? 0 : it->second;
}

void Admission::admit(Waiting& waiting) {
  waiting.step = Waiting::Step::kAdmitted;
  ++admitted_;
  if (const auto it = unproven_by_host_.find(waiting.host); it != unproven_by_host_.end()) {
    if (--it->second == 0) {
      unproven_by_host_.erase(it);
    }
  }
}

void Admission::on_message(Waiting& waiting, std::span<const std::byte> bytes) {
  tp::Endpoint* endpoint = waiting.endpoint.get();
  if (waiting.step == Waiting::Step::kIntroduction && waiting.seal) {
    std::optional<Message> introduction = waiting.seal->open(bytes);
    if (!introduction) {
      return drop(endpoint, "its first message after the handshake failed its integrity check");
    }
    waiting.introduction = std::move(introduction);
    admit(waiting);
    return;
  }
  const std::optional<Message> message = decode(bytes);
  if (!message) {
    return drop(endpoint, "malformed message");
  }
  switch (waiting.step) {
    case Waiting::Step::kHello: {
      const auto* hello = std::get_if<Hello>(&*message);
      if (hello == nullptr) {
        return drop(endpoint, fmt::format("sent {} before Hello", message_name(*message)));
      }
      if (options_.filter) {
        if (std::string why = options_.filter(hello->rank); !why.empty()) {
          return drop(endpoint, why);
        }
      }
      std::string why;
      const std::optional<Challenge> challenge = waiting.handshake.challenge(*hello, why);
      if (!challenge) {
        return drop(endpoint, why);
      }
      if (!endpoint->send_control(encode(*challenge)).is_ok()) {
        return drop(endpoint, "hung up during the handshake");
      }
      waiting.step = Waiting::Step::kProof;
      return;
    }
    case Waiting::Step::kProof: {
      const auto* proof = std::get_if<Proof>(&*message);
      if (proof == nullptr || !waiting.handshake.verify(*proof)) {
        // The two channels have always said it in their own words (logs and tests match them).
        return drop(endpoint, options_.channel == Channel::kControl
                                  ? "failed authentication (it does not hold this job's key)"
                                  : "failed authentication (wrong job key)");
      }
      endpoint->trust();  // proven: its control messages may now be of any size the API allows
      if (options_.sealed) {
        waiting.seal.emplace(waiting.handshake.seal());
      }
      waiting.step = Waiting::Step::kIntroduction;
      return;
    }
    case Waiting::Step::kIntroduction:
      waiting.introduction = *message;
      admit(waiting);
      return;
    case Waiting::Step::kAdmitted:
      // Both channels' scripts have the initiator wait for its owner's answer after the
      // introduction: anything more is out of turn.
      return drop(endpoint, fmt::format("sent {} before it was served", message_name(*message)));
  }
}

void Admission::expire(Clock::time_point now) {
  retired_.clear();  // no event of the last batch names them any more
  report_held_back(refusal_log_.take_suppressed(now));
  std::vector<tp::Endpoint*> late;
  for (const auto& waiting : waiting_) {
    // A proven peer is not timed out: it waits for its owner (a node's plan), bounded in number.
    if (waiting->step != Waiting::Step::kAdmitted && now > waiting->deadline) {
      late.push_back(waiting->endpoint.get());
    }
  }
  for (tp::Endpoint* endpoint : late) {
    drop(endpoint, fmt::format("did not prove itself within {} ms", options_.deadline.count()));
  }
}

std::vector<AdmittedPeer> Admission::take() {
  std::vector<AdmittedPeer> out;
  if (admitted_ == 0) {
    return out;
  }
  for (auto& waiting : waiting_) {
    if (waiting->step == Waiting::Step::kAdmitted) {
      by_endpoint_.erase(waiting->endpoint.get());
      out.push_back({std::move(waiting->endpoint), waiting->handshake.peer_rank(),
                     std::move(*waiting->introduction), std::move(waiting->seal)});
    }
  }
  std::erase_if(waiting_, [](const auto& w) { return w->endpoint == nullptr; });
  admitted_ = 0;
  return out;
}

void Admission::refuse(AdmittedPeer peer, const std::string& why) {
  log_refusal(*peer.endpoint, why);
  retired_.push_back(std::move(peer.endpoint));
}

void Admission::drop(tp::Endpoint* endpoint, const std::string& why) {
  const auto it = by_endpoint_.find(endpoint);
  if (it == by_endpoint_.end()) {
    return;
  }
  Waiting* waiting = it->second;
  if (!why.empty()) {
    log_refusal(*endpoint, why);
  }
  if (waiting->step == Waiting::Step::kAdmitted) {
    --admitted_;
  } else if (const auto host = unproven_by_host_.find(waiting->host);
             host != unproven_by_host_.end() && --host->second == 0) {
    unproven_by_host_.erase(host);
  }
  by_endpoint_.erase(it);
  retired_.push_back(std::move(waiting->endpoint));
  std::erase_if(waiting_, [](const auto& w) { return w->endpoint == nullptr; });
}

const char* Admission::channel_name() const noexcept {
  return options_.channel == Channel::kControl ? "control" : "data";
}

void Admission::log_refusal(const tp::Endpoint& endpoint, const std::string& why) {
  const auto now = Clock::now();
  report_held_back(refusal_log_.take_suppressed(now));
  // Past the limit every refusal is still there at debug level, for whoever asks for it.
  const auto level = refusal_log_.allow(now) ? spdlog::level::warn : spdlog::level::debug;
  log().log(level, "refused {} connection from {}: {}", channel_name(), endpoint.peer_name(), why);
}

void Admission::report_held_back(std::size_t count) {
  if (count == 0) {
    return;
  }
  log().warn(
      "refused {} more {} connection(s) (logged at debug level: at most {} refusals per {} "
      "s are at warn level)",
      count, channel_name(), kRefusalsLogged, kRefusalLogWindow.count());
}

}  // namespace imgcast::replicator
