#include "cli/progress_line.h"

#include <gtest/gtest.h>

#include <sstream>

namespace imgcast::cli {
namespace {

replicator::ProgressSnapshot snapshot() {
  replicator::ProgressSnapshot s;
  s.image_bytes = 1'000'000'000;
  s.elapsed_seconds = 2.0;
  s.bytes_verified = {1'000'000'000, 600'000'000, 200'000'000, 0};
  s.hosts = {"n0", "n1", "n2", "n3"};
  s.done = 1;
  return s;
}

TEST(ProgressLine, SaysPercentRatesSlowestHostEtaAndDone) {
  replicator::ProgressSnapshot s = snapshot();
  s.bytes_verified[3] = 100'000'000;  // the slowest: 50 MB/s, 900 MB to go -> 18 s
  EXPECT_EQ(progress_text(s),
            "[ 48%] 1.90 of 4.00 GB, 950 MB/s aggregate, slowest 50 MB/s (n3), ETA 18s, "
            "1/4 hosts done");
}

TEST(ProgressLine, UnknownEtaWhileAHostHasNothingYetAndFailuresShow) {
  replicator::ProgressSnapshot s = snapshot();
  s.failed = 1;
  const std::string text = progress_text(s);
  EXPECT_NE(text.find("slowest 0 MB/s (n3), ETA ?"), std::string::npos) << text;
  EXPECT_NE(text.find("1 failed"), std::string::npos) << text;
}

TEST(ProgressLine, BeforeDataMovesItSaysWhatTheSetupWaitsFor) {
  replicator::ProgressSnapshot s = snapshot();
  s.setup_step = "joined";
  s.setup_reached = 2;
  s.setup_seconds = 1.25;
  s.failed = 1;
  EXPECT_EQ(progress_text(s), "[setup 1.2s] 2/3 agents joined, 1 failed");
}

TEST(ProgressLine, RedrawsInPlaceAndClears) {
  std::ostringstream out;
  {
    ProgressLine line(out);
    line.update(snapshot());
    line.update(snapshot());
    line.clear();
  }
  const std::string text = out.str();
  EXPECT_EQ(text.rfind("\r\033[K", 0), 0u);
  EXPECT_EQ(text.substr(text.size() - 4), "\r\033[K");  // cleared at the end, once
  EXPECT_EQ(text.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace imgcast::cli
