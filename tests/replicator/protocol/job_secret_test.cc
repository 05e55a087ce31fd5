// The job secret line: what the root hands each agent, parsed strictly.
#include "replicator/protocol/job_secret.h"

#include <gtest/gtest.h>

namespace imgcast::replicator {
namespace {

TEST(JobSecret, RoundTripsAndRejectsGarbage) {
  JobSecret secret;
  secret.job = random_job_id();
  secret.key = JobKey::random();
  const auto parsed = JobSecret::parse(secret.to_line());
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->job, secret.job);
  EXPECT_EQ(parsed->key.bytes, secret.key.bytes);
  EXPECT_EQ(parsed->transport, transport::Kind::kTcp);
  for (const char* bad : {"", "IMGCAST1", "IMGCAST2 00 00 tcp", "IMGCAST1 zz 00 tcp",
                          "IMGCAST1 00000000000000000000000000000000 00 tcp"}) {
    EXPECT_FALSE(JobSecret::parse(bad)) << bad;
  }
  std::string extra = secret.to_line();
  extra.insert(extra.size() - 1, " more");
  EXPECT_FALSE(JobSecret::parse(extra));
}

}  // namespace
}  // namespace imgcast::replicator
