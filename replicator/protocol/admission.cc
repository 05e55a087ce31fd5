#include "replicator/protocol/admission.h"

#include <fmt/format.h>

#include <algorithm>

#include "replicator/log.h"

namespace imgcast::replicator {

namespace tp = transport;

struct Admission::Waiting {
  enum class Step { kHello, kProof, kIntroduction, kAdmitted };
  Waiting(std::unique_ptr<tp::Endpoint> e, const Options& options, Clock::time_point until)
      : endpoint(std::move(e)),
        handshake(*options.key, options.job, options.channel),
        deadline(until) {}
  std::unique_ptr<tp::Endpoint> endpoint;
  ResponderHandshake handshake;
  Clock::time_point deadline;
  Step step = Step::kHello;
  std::optional<Message> introduction;
  std::optional<MessageSeal> seal;  // from the proof on, on a sealed channel
};

Admission::Admission(Options options) : options_(std::move(options)) {}

Admission::~Admission() = default;

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
  waiting_.push_back(
      std::make_unique<Waiting>(std::move(endpoint), options_, Clock::now() + options_.deadline));
  by_endpoint_[raw] = waiting_.back().get();
}

void Admission::on_message(Waiting& waiting, std::span<const std::byte> bytes) {
  tp::Endpoint* endpoint = waiting.endpoint.get();
  if (waiting.step == Waiting::Step::kIntroduction && waiting.seal) {
    std::optional<Message> introduction = waiting.seal->open(bytes);
    if (!introduction) {
      return drop(endpoint, "its first message after the handshake failed its integrity check");
    }
    waiting.introduction = std::move(introduction);
    waiting.step = Waiting::Step::kAdmitted;
    ++admitted_;
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
      waiting.step = Waiting::Step::kAdmitted;
      ++admitted_;
      return;
    case Waiting::Step::kAdmitted:
      // Both channels' scripts have the initiator wait for its owner's answer after the
      // introduction: anything more is out of turn.
      return drop(endpoint, fmt::format("sent {} before it was served", message_name(*message)));
  }
}

void Admission::expire(Clock::time_point now) {
  retired_.clear();  // no event of the last batch names them any more
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
  }
  by_endpoint_.erase(it);
  retired_.push_back(std::move(waiting->endpoint));
  std::erase_if(waiting_, [](const auto& w) { return w->endpoint == nullptr; });
}

const char* Admission::channel_name() const noexcept {
  return options_.channel == Channel::kControl ? "control" : "data";
}

void Admission::log_refusal(const tp::Endpoint& endpoint, const std::string& why) const {
  log().warn("refused {} connection from {}: {}",
             options_.channel == Channel::kControl ? "control" : "data", endpoint.peer_name(), why);
}

}  // namespace imgcast::replicator
