// Admission: the one way a listener's connections become peers, on the control channel (the
// root admits agents) and on the data channel (every node admits its children). A connection is
// nobody until it proves it holds the job key; until then it gets nothing but a challenge:
//
//   accepted -> Hello (the filter may refuse its rank) -> Challenge -> Proof -> introduction
//            -> handed over (take()) with its rank and its introduction
//
// The introduction is the first message after the proof (Join on control, Region on data): the
// initiator sends it right behind the proof, so the owner gets a peer together with what it says
// of itself, and a peer that arrives before its owner is ready (a child that connects before its
// parent's plan) simply waits here, admitted.
//
// Bounded: a connection that has not proved itself within the deadline is dropped, and when
// `max_waiting` connections wait at once the oldest one still proving itself makes room. The
// owner sizes the cap for its largest honest burst (every agent at the root's control listener,
// every child of a wide tree at once), so only a crowd beyond that, a port scanner holding
// connections open, is evicted. One address (a host, whatever its ports) holds at most
// `max_waiting_per_address` unproven connections: its newcomer beyond that evicts its own oldest
// unproven one, so a single host cannot fill the cap and evict everyone else's handshakes.
// Refusals are logged at warn level at most kRefusalsLogged per kRefusalLogWindow, the rest at
// debug level and counted in one summary line, so a swarm cannot flood the log.
// A connection that is refused or hangs up is closed only at the next expire(): events of the
// current batch may still name it.
//
// Owned and driven by one thread, the one that polls the listener's Context.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "replicator/protocol/auth.h"
#include "replicator/protocol/messages.h"
#include "transport/completion.h"
#include "transport/endpoint.h"
#include "transport/log_rate_limit.h"

namespace imgcast::replicator {

// A peer that proved it holds the job key.
struct AdmittedPeer {
  std::unique_ptr<transport::Endpoint> endpoint;
  std::uint32_t rank = 0;  // the rank its Hello claimed (and its proof covered)
  Message introduction;    // its first message after the proof
  // The seal of every later message with it, on a sealed channel (Options::sealed).
  std::optional<MessageSeal> seal;
};

class Admission {
 public:
  using Clock = std::chrono::steady_clock;
  // Whether a peer whose Hello claims `rank` may go on: empty to let it, else why not (logged).
  using RankFilter = std::function<std::string(std::uint32_t rank)>;

  static constexpr std::size_t kRefusalsLogged = 20;
  static constexpr std::chrono::seconds kRefusalLogWindow{10};

  struct Options {
    Channel channel = Channel::kControl;
    const JobKey* key = nullptr;  // REQUIRES: outlives the Admission
    JobId job{};
    std::chrono::milliseconds deadline{30000};  // from accept to its introduction
    std::size_t max_waiting = 64;               // connections held at once, admitted or not
    // Unproven connections held at once from one address (>= 1). 64 covers the most honest
    // peers one address sends at once: every agent of a job run on one machine (`imgcast demo`
    // has at most 64 nodes; the e2e tests' agents on 127.0.0.2..N all connect from 127.0.0.1),
    // or every child of a node there; on a cluster a host sends one control connection and one
    // data connection per tree. Proven peers never count: they are never evicted.
    std::size_t max_waiting_per_address = 64;
    RankFilter filter;                          // empty: any rank (the owner checks later)
    // Every message after the proof, the introduction first, is sealed (message_seal.h).
    bool sealed = false;
  };

  explicit Admission(Options options);
  ~Admission();
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // Takes `event` if it is this admission's: a PeerAccepted, or a message or failure of a
  // connection it holds. False: the event names a peer it does not hold (the owner's own).
  bool handle(transport::Completion& event);
  // Drops connections still proving themselves past their deadline, and closes the ones dropped
  // in earlier batches.
  // Call between batches of completions.
  void expire(Clock::time_point now);

  // The peers admitted since the last call, oldest first; the caller owns them from now on.
  // Call it right after handle() took an event, so the next event of the same batch from that
  // peer already finds its owner.
  std::vector<AdmittedPeer> take();
  bool has_admitted() const noexcept { return admitted_ > 0; }
  // Refuses a peer the owner took and will not serve (it is logged like every refusal, and
  // closed at the next expire()).
  void refuse(AdmittedPeer peer, const std::string& why);

  // Connections held now (proving themselves or admitted, not yet taken).
  std::size_t waiting() const noexcept { return waiting_.size(); }
  // Connections from `host` (an address without its port) still proving themselves.
  std::size_t unproven_from(const std::string& host) const;

 private:
  struct Waiting;

  void accept(std::unique_ptr<transport::Endpoint> endpoint);
  void on_message(Waiting& waiting, std::span<const std::byte> bytes);
  // Marks `waiting` proven: it no longer counts against its address.
  void admit(Waiting& waiting);
  // Logs "refused <channel> connection from <peer>: <why>" and closes it at the next expire().
  void drop(transport::Endpoint* endpoint, const std::string& why);
  void log_refusal(const transport::Endpoint& endpoint, const std::string& why);
  // One line for the refusals the rate limit held back, once their window is over.
  void report_held_back(std::size_t count);
  const char* channel_name() const noexcept;  // "control" or "data", for logs

  Options options_;
  // By arrival; the map finds a connection's entry in O(1) (the root may hold thousands).
  std::deque<std::unique_ptr<Waiting>> waiting_;
  std::unordered_map<const transport::Endpoint*, Waiting*> by_endpoint_;
  std::size_t admitted_ = 0;  // entries of waiting_ that proved themselves
  std::unordered_map<std::string, std::size_t> unproven_by_host_;  // no zero entries
  transport::LogRateLimit refusal_log_{kRefusalsLogged, kRefusalLogWindow};
  std::vector<std::unique_ptr<transport::Endpoint>> retired_;
};

}  // namespace imgcast::replicator
