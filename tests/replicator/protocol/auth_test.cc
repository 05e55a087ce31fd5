// The challenge-response: holders of the key get in, others and replays do not.
#include "replicator/protocol/auth.h"

#include <gtest/gtest.h>

#include "replicator/errors.h"

namespace imgcast::replicator {
namespace {

TEST(Auth, BothSidesWithTheKeyAuthenticate) {
  const JobKey key = JobKey::random();
  const JobId job = random_job_id();
  InitiatorHandshake initiator(key, job, Channel::kControl, 5);
  ResponderHandshake responder(key, job, Channel::kControl);
  std::string why;
  const auto challenge = responder.challenge(initiator.hello(), why);
  ASSERT_TRUE(challenge) << why;
  const auto proof = initiator.answer(*challenge);
  ASSERT_TRUE(proof);
  EXPECT_TRUE(responder.verify(*proof));
  EXPECT_EQ(responder.peer_rank(), 5u);
}

TEST(Auth, AnInitiatorWithoutTheKeyIsRefused) {
  const JobKey key = JobKey::random();
  const JobId job = random_job_id();
  const JobKey wrong = JobKey::random();
  InitiatorHandshake intruder(wrong, job, Channel::kData, 1);
  ResponderHandshake responder(key, job, Channel::kData);
  std::string why;
  const auto challenge = responder.challenge(intruder.hello(), why);
  ASSERT_TRUE(challenge);
  // The intruder cannot check the responder's MAC either, so it cannot even answer.
  EXPECT_FALSE(intruder.answer(*challenge));
  Proof forged;
  forged.mac[0] = std::byte{1};
  EXPECT_FALSE(responder.verify(forged));
}

TEST(Auth, AResponderWithoutTheKeyIsRefused) {
  const JobKey key = JobKey::random();
  const JobId job = random_job_id();
  InitiatorHandshake initiator(key, job, Channel::kControl, 2);
  const JobKey wrong = JobKey::random();
  ResponderHandshake impostor(wrong, job, Channel::kControl);
  std::string why;
  const auto challenge = impostor.challenge(initiator.hello(), why);
  ASSERT_TRUE(challenge);
  EXPECT_FALSE(initiator.answer(*challenge));
}

TEST(Auth, AReplayedTranscriptIsRefused) {
  const JobKey key = JobKey::random();
  const JobId job = random_job_id();
  InitiatorHandshake initiator(key, job, Channel::kControl, 3);
  ResponderHandshake first(key, job, Channel::kControl);
  std::string why;
  const auto challenge = first.challenge(initiator.hello(), why);
  const auto proof = initiator.answer(*challenge);
  ASSERT_TRUE(proof && first.verify(*proof));
  // An eavesdropper replays Hello and Proof to a new connection: the responder's fresh nonce
  // makes the old proof worthless.
  ResponderHandshake second(key, job, Channel::kControl);
  ASSERT_TRUE(second.challenge(initiator.hello(), why));
  EXPECT_FALSE(second.verify(*proof));
}

TEST(Auth, WrongJobVersionOrChannelIsRefusedBeforeAnyMac) {
  const JobKey key = JobKey::random();
  const JobId job = random_job_id();
  ResponderHandshake responder(key, job, Channel::kControl);
  std::string why;
  InitiatorHandshake other_job(key, random_job_id(), Channel::kControl, 1);
  EXPECT_FALSE(responder.challenge(other_job.hello(), why));
  EXPECT_NE(why.find("another job"), std::string::npos);
  InitiatorHandshake data(key, job, Channel::kData, 1);
  EXPECT_FALSE(responder.challenge(data.hello(), why));
  Hello old = InitiatorHandshake(key, job, Channel::kControl, 1).hello();
  old.version = 99;
  EXPECT_FALSE(responder.challenge(old, why));
  EXPECT_NE(why.find("version"), std::string::npos);
}

TEST(Auth, AProofForOneRankDoesNotServeAnother) {
  const JobKey key = JobKey::random();
  const JobId job = random_job_id();
  InitiatorHandshake honest(key, job, Channel::kControl, 1);
  ResponderHandshake responder(key, job, Channel::kControl);
  std::string why;
  Hello claimed = honest.hello();
  claimed.rank = 2;  // a man in the middle rewrites the rank
  const auto challenge = responder.challenge(claimed, why);
  ASSERT_TRUE(challenge);
  EXPECT_FALSE(honest.answer(*challenge));
}

}  // namespace
}  // namespace imgcast::replicator
