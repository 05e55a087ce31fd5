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

// --transport auto with an RDMA kind travels as "<kind>+tcp"; "tcp+tcp" means nothing.
TEST(JobSecret, CarriesTheTcpFallback) {
  JobSecret secret;
  secret.job = random_job_id();
  secret.key = JobKey::random();
  secret.transport = transport::Kind::kUcx;
  secret.transport_fallback = true;
  const std::string line = secret.to_line();
  EXPECT_NE(line.find(" ucx+tcp\n"), std::string::npos) << line;
  const auto parsed = JobSecret::parse(line);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->transport, transport::Kind::kUcx);
  EXPECT_TRUE(parsed->transport_fallback);
  secret.transport_fallback = false;
  EXPECT_FALSE(JobSecret::parse(secret.to_line())->transport_fallback);
  std::string tcp_tcp = line;
  tcp_tcp.replace(tcp_tcp.find("ucx+tcp"), 3, "tcp");
  EXPECT_FALSE(JobSecret::parse(tcp_tcp));
  std::string bare = line;
  bare.replace(bare.find("ucx+tcp"), 7, "+tcp");
  EXPECT_FALSE(JobSecret::parse(bare));
}

}  // namespace
}  // namespace imgcast::replicator
