// The seal of every message after a handshake: what one side seals the other opens, once and in
// order; an altered byte, a replay, a reordering, a reflection back to its sender, or a message
// from another connection (other nonces) or another key does not open.
#include "replicator/protocol/message_seal.h"

#include <gtest/gtest.h>

#include "replicator/protocol/auth.h"

namespace imgcast::replicator {
namespace {

struct Pair {
  JobKey key = JobKey::random();
  JobId job = random_job_id();
  Nonce initiator_nonce = random_nonce();
  Nonce responder_nonce = random_nonce();
  MessageSeal agent{key, Channel::kControl, 4, job, initiator_nonce, responder_nonce,
                    MessageSeal::Side::kInitiator};
  MessageSeal root{key, Channel::kControl, 4, job, initiator_nonce, responder_nonce,
                   MessageSeal::Side::kResponder};
};

Plan a_plan() {
  Plan plan;
  plan.image_bytes = 1 << 30;
  plan.destination = "/tmp/image.sif";
  plan.topology = "kary:2";
  return plan;
}

TEST(MessageSeal, EachSideOpensWhatTheOtherSealedInOrder) {
  Pair p;
  for (std::uint64_t i = 0; i < 3; ++i) {
    const auto opened = p.root.open(p.agent.seal(Progress{i}));
    ASSERT_TRUE(opened.has_value());
    EXPECT_EQ(std::get<Progress>(*opened).bytes_verified, i);
  }
  const auto plan = p.agent.open(p.root.seal(a_plan()));
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(std::get<Plan>(*plan).destination, "/tmp/image.sif");
}

TEST(MessageSeal, AnyAlteredByteFailsAndDoesNotMoveTheSequence) {
  Pair p;
  const std::vector<std::byte> sealed = p.root.seal(a_plan());
  for (std::size_t i = 0; i < sealed.size(); i += 7) {
    std::vector<std::byte> altered = sealed;
    altered[i] ^= std::byte{0x20};
    EXPECT_FALSE(p.agent.open(altered).has_value()) << "byte " << i;
  }
  EXPECT_FALSE(p.agent.open(std::span(sealed).first(sealed.size() - 1)).has_value());
  EXPECT_FALSE(p.agent.open({}).has_value());
  EXPECT_TRUE(p.agent.open(sealed).has_value()) << "the true one still opens";
}

TEST(MessageSeal, AReplayOrAReorderingFails) {
  Pair p;
  const auto first = p.root.seal(Finish{});
  const auto second = p.root.seal(Bye{});
  EXPECT_FALSE(p.agent.open(second).has_value()) << "the second before the first";
  EXPECT_TRUE(p.agent.open(first).has_value());
  EXPECT_FALSE(p.agent.open(first).has_value()) << "the first again";
  EXPECT_TRUE(p.agent.open(second).has_value());
}

TEST(MessageSeal, AMessageReflectedToItsSenderFails) {
  Pair p;
  EXPECT_FALSE(p.agent.open(p.agent.seal(Bye{})).has_value());
}

TEST(MessageSeal, AnotherConnectionOrKeyDoesNotOpen) {
  Pair p;
  Pair other;  // other nonces and key
  MessageSeal same_key_other_nonces{p.key,       Channel::kControl,     4, p.job,
                                    random_nonce(), p.responder_nonce, MessageSeal::Side::kInitiator};
  MessageSeal other_rank{p.key, Channel::kControl, 5, p.job, p.initiator_nonce, p.responder_nonce,
                         MessageSeal::Side::kInitiator};
  const auto sealed = p.root.seal(Bye{});
  EXPECT_FALSE(other.agent.open(sealed).has_value());
  EXPECT_FALSE(same_key_other_nonces.open(sealed).has_value());
  EXPECT_FALSE(other_rank.open(sealed).has_value());
  EXPECT_TRUE(p.agent.open(sealed).has_value());
}

TEST(MessageSeal, BothHandshakeSidesDeriveTheSameSession) {
  const JobKey key = JobKey::random();
  const JobId job = random_job_id();
  InitiatorHandshake initiator(key, job, Channel::kControl, 2);
  ResponderHandshake responder(key, job, Channel::kControl);
  std::string why;
  const auto challenge = responder.challenge(initiator.hello(), why);
  ASSERT_TRUE(challenge.has_value()) << why;
  const auto proof = initiator.answer(*challenge);
  ASSERT_TRUE(proof.has_value());
  ASSERT_TRUE(responder.verify(*proof));
  MessageSeal agent = initiator.seal(*challenge);
  MessageSeal root = responder.seal();
  EXPECT_TRUE(root.open(agent.seal(Ready{})).has_value());
  EXPECT_TRUE(agent.open(root.seal(Bye{})).has_value());
}

}  // namespace
}  // namespace imgcast::replicator
