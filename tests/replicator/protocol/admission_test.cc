// The one admission path, over real TCP contexts in one process: an honest peer is handed over
// with its rank and introduction; a wrong key, a refused rank, a message out of turn, a silent
// connection and a crowd of them are each let go, and proven peers keep their places; a crowd
// from one address evicts only its own, and its refusals are logged in bounded number.
#include "replicator/protocol/admission.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/sinks/ostream_sink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <sstream>

#include "replicator/log.h"
#include "transport/host_port.h"
#include "transport/tcp/tcp_context.h"

namespace imgcast::replicator {
namespace {

namespace tp = transport;
using namespace std::chrono_literals;

class AdmissionTest : public ::testing::Test {
 protected:
  AdmissionTest() {
    key_ = JobKey::random();
    job_ = random_job_id();
    listener_ = server_->listen({});
  }

  Admission::Options options() {
    Admission::Options o;
    o.channel = Channel::kData;
    o.key = &key_;
    o.job = job_;
    o.deadline = 5s;
    return o;
  }

  // A peer that connects and runs the initiator's side of the handshake with `key` (which must
  // outlive it: the handshake keeps a reference), sending
  // `introduction` right behind its proof (as agents and children do).
  struct Peer {
    std::unique_ptr<tp::Endpoint> endpoint;
    std::optional<InitiatorHandshake> handshake;
    std::optional<MessageSeal> seal;  // on a sealed channel, from the challenge on
    bool failed = false;
  };
  Peer connect(const JobKey& key, std::uint32_t rank) {
    Peer peer;
    peer.endpoint = client_->connect(listener_->address(), 2s);
    peer.handshake.emplace(key, job_, Channel::kData, rank);
    EXPECT_TRUE(peer.endpoint->send_control(encode(peer.handshake->hello())).is_ok());
    return peer;
  }

  // How the client sends its introduction: as is, sealed, or sealed and then altered in flight.
  enum class Form { kPlain, kSealed, kSealedAltered };

  // Polls both sides until `done` or 3 s; the client answers challenges for `peers`.
  bool run_until(Admission& admission, std::vector<Peer*> peers, const std::function<bool()>& done,
                 const Message& introduction = Region{}, std::chrono::milliseconds limit = 3s,
                 Form form = Form::kPlain) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::vector<tp::Completion> events;
    while (std::chrono::steady_clock::now() < deadline) {
      events.clear();
      EXPECT_TRUE(server_->poll(events, 5ms).is_ok());
      for (auto& event : events) {
        EXPECT_TRUE(admission.handle(event)) << "an event for a connection it holds";
      }
      admission.expire(std::chrono::steady_clock::now());
      events.clear();
      EXPECT_TRUE(client_->poll(events, 5ms).is_ok());
      for (auto& event : events) {
        for (Peer* peer : peers) {
          if (auto* arrived = std::get_if<tp::ControlArrived>(&event);
              arrived && arrived->from == peer->endpoint.get() && !peer->seal) {
            const auto message = decode(arrived->bytes);
            if (!message || !std::holds_alternative<Challenge>(*message)) {
              ADD_FAILURE() << "the responder sent something other than a Challenge";
              return false;
            }
            if (const auto proof = peer->handshake->answer(std::get<Challenge>(*message))) {
              EXPECT_TRUE(peer->endpoint->send_control(encode(*proof)).is_ok());
              std::vector<std::byte> bytes = encode(introduction);
              if (form != Form::kPlain) {
                peer->seal.emplace(peer->handshake->seal(std::get<Challenge>(*message)));
                bytes = peer->seal->seal(introduction);
                if (form == Form::kSealedAltered)
                  bytes[1] ^= std::byte{1};
              }
              EXPECT_TRUE(peer->endpoint->send_control(bytes).is_ok());
            }
          }
          if (auto* failed = std::get_if<tp::PeerFailed>(&event);
              failed && failed->peer == peer->endpoint.get()) {
            peer->failed = true;
          }
        }
      }
      if (done()) {
        return true;
      }
    }
    return false;
  }

  // A plain TCP connection to the listener from `source` (any 127.x address is ours), which
  // says nothing: a host of a swarm. The caller closes it.
  int connect_from(const char* source) {
    const auto target = tp::HostPort::parse(listener_->address());
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &from.sin_addr);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(target->port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from), 0);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
    return fd;
  }
  // Whether the other end closed `fd` (without reading anything it may have sent).
  static bool closed(int fd) {
    char byte;
    return ::recv(fd, &byte, 1, MSG_DONTWAIT | MSG_PEEK) == 0;
  }

  JobKey key_;
  JobId job_{};
  std::unique_ptr<tp::Context> server_ = tp::tcp::make_tcp_context({});
  std::unique_ptr<tp::Context> client_ = tp::tcp::make_tcp_context({});
  std::unique_ptr<tp::Listener> listener_;
};

TEST_F(AdmissionTest, AnHonestPeerIsHandedOverWithItsRankAndIntroduction) {
  Admission admission(options());
  Peer peer = connect(key_, 7);
  const Region region{{}, 12, 1};
  ASSERT_TRUE(run_until(
      admission, {&peer}, [&] { return admission.has_admitted(); }, region));
  std::vector<AdmittedPeer> admitted = admission.take();
  ASSERT_EQ(admitted.size(), 1u);
  EXPECT_EQ(admitted[0].rank, 7u);
  ASSERT_TRUE(std::holds_alternative<Region>(admitted[0].introduction));
  EXPECT_EQ(std::get<Region>(admitted[0].introduction).resume_from, 12u);
  EXPECT_EQ(std::get<Region>(admitted[0].introduction).tree, 1);
  EXPECT_EQ(admission.waiting(), 0u);
  EXPECT_FALSE(admission.has_admitted());
  // Handed over: its events are the owner's now.
  tp::Completion event = tp::ControlArrived{admitted[0].endpoint.get(), encode(Bye{})};
  EXPECT_FALSE(admission.handle(event));
}

TEST_F(AdmissionTest, OnASealedChannelThePeerComesWithTheSealOfEveryLaterMessage) {
  Admission::Options sealed = options();
  sealed.sealed = true;
  Admission admission(sealed);
  Peer peer = connect(key_, 3);
  ASSERT_TRUE(run_until(
      admission, {&peer}, [&] { return admission.has_admitted(); }, Region{{}, 5, 0}, 3s,
      Form::kSealed));
  std::vector<AdmittedPeer> admitted = admission.take();
  ASSERT_EQ(admitted.size(), 1u);
  EXPECT_EQ(std::get<Region>(admitted[0].introduction).resume_from, 5u);
  ASSERT_TRUE(admitted[0].seal.has_value());
  // Both ends hold the same session: each opens what the other sealed, in both directions.
  const auto from_peer = admitted[0].seal->open(peer.seal->seal(Progress{42}));
  ASSERT_TRUE(from_peer.has_value());
  EXPECT_EQ(std::get<Progress>(*from_peer).bytes_verified, 42u);
  EXPECT_TRUE(peer.seal->open(admitted[0].seal->seal(Bye{})).has_value());
}

TEST_F(AdmissionTest, OnASealedChannelAnAlteredIntroductionIsRefused) {
  Admission::Options sealed = options();
  sealed.sealed = true;
  Admission admission(sealed);
  Peer peer = connect(key_, 3);
  EXPECT_TRUE(run_until(
      admission, {&peer}, [&] { return peer.failed; }, Region{{}, 5, 0}, 3s,
      Form::kSealedAltered));
  EXPECT_FALSE(admission.has_admitted());
}

TEST_F(AdmissionTest, APeerWithAnotherKeyNeverGetsIn) {
  Admission admission(options());
  const JobKey other = JobKey::random();  // outlives the handshake, which holds a reference
  Peer peer = connect(other, 1);
  // The peer finds our challenge's MAC wrong and answers nothing, so it never proves itself.
  EXPECT_FALSE(run_until(
      admission, {&peer}, [&] { return admission.has_admitted(); }, Region{}, 300ms));
  EXPECT_EQ(admission.waiting(), 1u) << "unproven, within its deadline";
}

TEST_F(AdmissionTest, AProofWithAnotherKeyIsRefused) {
  Admission admission(options());
  Peer peer = connect(key_, 1);
  // A peer without the key cannot compute the proof: it sends a made-up one.
  std::vector<tp::Completion> events;
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  bool challenged = false;
  while (!peer.failed && std::chrono::steady_clock::now() < deadline) {
    events.clear();
    ASSERT_TRUE(server_->poll(events, 5ms).is_ok());
    for (auto& event : events)
      EXPECT_TRUE(admission.handle(event));
    admission.expire(std::chrono::steady_clock::now());
    events.clear();
    ASSERT_TRUE(client_->poll(events, 5ms).is_ok());
    for (auto& event : events) {
      if (std::holds_alternative<tp::ControlArrived>(event) && !challenged) {
        challenged = true;
        Proof forged;
        forged.mac[0] = std::byte{1};
        ASSERT_TRUE(peer.endpoint->send_control(encode(forged)).is_ok());
      }
      peer.failed |= std::holds_alternative<tp::PeerFailed>(event);
    }
  }
  EXPECT_TRUE(challenged);
  EXPECT_TRUE(peer.failed) << "closed after a proof that does not verify";
  EXPECT_FALSE(admission.has_admitted());
  EXPECT_EQ(admission.waiting(), 0u);
}

TEST_F(AdmissionTest, TheFilterRefusesARankBeforeAnyChallenge) {
  auto o = options();
  o.filter = [](std::uint32_t rank) {
    return rank == 3 ? std::string() : "claims rank " + std::to_string(rank);
  };
  Admission admission(std::move(o));
  Peer refused = connect(key_, 4);
  Peer welcome = connect(key_, 3);
  ASSERT_TRUE(run_until(admission, {&refused, &welcome},
                        [&] { return refused.failed && admission.has_admitted(); }));
  const auto admitted = admission.take();
  ASSERT_EQ(admitted.size(), 1u);
  EXPECT_EQ(admitted[0].rank, 3u);
}

TEST_F(AdmissionTest, AMessageBeforeHelloIsRefused) {
  Admission admission(options());
  Peer peer;
  peer.endpoint = client_->connect(listener_->address(), 2s);
  ASSERT_TRUE(peer.endpoint->send_control(encode(Region{})).is_ok());
  ASSERT_TRUE(run_until(admission, {&peer}, [&] { return peer.failed; }));
  EXPECT_EQ(admission.waiting(), 0u);
}

TEST_F(AdmissionTest, ASilentConnectionIsDroppedAtItsDeadline) {
  auto o = options();
  o.deadline = 200ms;
  Admission admission(std::move(o));
  Peer silent;
  silent.endpoint = client_->connect(listener_->address(), 2s);
  ASSERT_TRUE(run_until(admission, {&silent}, [&] { return silent.failed; }));
  EXPECT_EQ(admission.waiting(), 0u);
}

TEST_F(AdmissionTest, ACrowdEvictsTheOldestUnprovenButNeverAProvenPeer) {
  auto o = options();
  o.max_waiting = 3;
  Admission admission(std::move(o));
  Peer proven = connect(key_, 1);
  ASSERT_TRUE(run_until(admission, {&proven}, [&] { return admission.has_admitted(); }));
  // Not taken yet (a node before its plan). Now four silent ones come.
  std::vector<Peer> silent(4);
  for (auto& peer : silent)
    peer.endpoint = client_->connect(listener_->address(), 2s);
  std::vector<Peer*> all{&proven};
  for (auto& peer : silent)
    all.push_back(&peer);
  ASSERT_TRUE(run_until(admission, all, [&] { return silent[0].failed && silent[1].failed; }));
  EXPECT_FALSE(proven.failed);
  EXPECT_FALSE(silent[2].failed);
  EXPECT_FALSE(silent[3].failed);
  EXPECT_EQ(admission.waiting(), 3u);
  const auto admitted = admission.take();
  ASSERT_EQ(admitted.size(), 1u);
  EXPECT_EQ(admitted[0].rank, 1u);
}

TEST_F(AdmissionTest, AProvenPeerThatTalksOutOfTurnIsLetGo) {
  Admission admission(options());
  Peer peer = connect(key_, 2);
  ASSERT_TRUE(run_until(admission, {&peer}, [&] { return admission.has_admitted(); }));
  ASSERT_TRUE(peer.endpoint->send_control(encode(Refetch{0})).is_ok());
  ASSERT_TRUE(run_until(admission, {&peer}, [&] { return peer.failed; }));
  EXPECT_FALSE(admission.has_admitted());
  EXPECT_TRUE(admission.take().empty());
}

TEST_F(AdmissionTest, ACrowdFromOneAddressEvictsOnlyItsOwnUnprovenConnections) {
  auto o = options();
  o.max_waiting = 4;
  o.max_waiting_per_address = 3;
  Admission admission(std::move(o));
  const int other = connect_from("127.0.0.1");  // someone else, mid-handshake, first in line
  ASSERT_TRUE(run_until(admission, {}, [&] { return admission.waiting() == 1; }));
  std::vector<int> crowd;
  for (int i = 0; i < 6; ++i) {
    crowd.push_back(connect_from("127.0.0.2"));
  }
  ASSERT_TRUE(run_until(admission, {},
                        [&] { return closed(crowd[0]) && closed(crowd[1]) && closed(crowd[2]); }));
  // Even with the total cap full, the crowd's newcomers made room among its own.
  EXPECT_FALSE(closed(other)) << "the oldest overall, but from another address";
  for (int i = 3; i < 6; ++i) {
    EXPECT_FALSE(closed(crowd[i])) << i;
  }
  EXPECT_EQ(admission.waiting(), 4u);
  EXPECT_EQ(admission.unproven_from("127.0.0.2"), 3u);
  EXPECT_EQ(admission.unproven_from("127.0.0.1"), 1u);
  for (int fd : crowd) {
    ::close(fd);
  }
  ::close(other);
}

TEST_F(AdmissionTest, AnHonestPeerGetsInBesideACrowdAtItsAddressCap) {
  auto o = options();
  o.max_waiting_per_address = 2;
  Admission admission(std::move(o));
  std::vector<int> crowd;
  for (int i = 0; i < 10; ++i) {
    crowd.push_back(connect_from("127.0.0.2"));
  }
  Peer peer = connect(key_, 5);  // from 127.0.0.1
  ASSERT_TRUE(run_until(admission, {&peer}, [&] { return admission.has_admitted(); }));
  EXPECT_EQ(admission.take().at(0).rank, 5u);
  EXPECT_EQ(admission.unproven_from("127.0.0.2"), 2u);
  EXPECT_EQ(admission.unproven_from("127.0.0.1"), 0u) << "proven: it no longer counts";
  for (int fd : crowd) {
    ::close(fd);
  }
}

TEST_F(AdmissionTest, RefusalsOfASwarmAreLoggedInBoundedNumberAndSummed) {
  std::ostringstream text;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text);
  sink->set_level(spdlog::level::warn);
  log().sinks().push_back(sink);
  constexpr std::size_t kSwarm = Admission::kRefusalsLogged + 15;
  std::vector<int> swarm;
  {
    auto o = options();
    o.max_waiting_per_address = 1;  // every newcomer refuses the one before it
    Admission admission(std::move(o));
    for (std::size_t i = 0; i < kSwarm; ++i) {
      swarm.push_back(connect_from("127.0.0.3"));
    }
    EXPECT_TRUE(run_until(admission, {}, [&] {
      return std::all_of(swarm.begin(), swarm.end() - 1, [](int fd) { return closed(fd); });
    }));
  }  // its end reports what the limit held back
  log().sinks().pop_back();
  for (int fd : swarm) {
    ::close(fd);
  }
  const std::string lines = text.str();
  std::size_t refusals = 0;
  for (auto at = lines.find("refused data connection from 127.0.0.3:"); at != std::string::npos;
       at = lines.find("refused data connection from 127.0.0.3:", at + 1)) {
    ++refusals;
  }
  EXPECT_EQ(refusals, Admission::kRefusalsLogged) << lines;
  EXPECT_NE(lines.find(fmt::format("refused {} more data connection(s)",
                                   kSwarm - 1 - Admission::kRefusalsLogged)),
            std::string::npos)
      << lines;
}

}  // namespace
}  // namespace imgcast::replicator
