// IMGCAST_RETURN_IF_ERROR: evaluates its argument once, passes an ok Status by, returns a
// failure unchanged, and leaves a debug line naming where it passed through.
#include "transport/status.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

#include "transport/log.h"

namespace imgcast::transport::test {
namespace {

Status forward(const Status& result, int& evaluations, bool& went_on) {
  IMGCAST_RETURN_IF_ERROR((++evaluations, result));
  went_on = true;
  return Status::ok();
}

TEST(ReturnIfError, PassesOkByAndReturnsAFailureAfterOneEvaluation) {
  int evaluations = 0;
  bool went_on = false;
  EXPECT_TRUE(forward(Status::ok(), evaluations, went_on).is_ok());
  EXPECT_EQ(evaluations, 1);
  EXPECT_TRUE(went_on);

  evaluations = 0;
  went_on = false;
  const Status failed = forward({StatusCode::kClosed, "peer hung up"}, evaluations, went_on);
  EXPECT_EQ(evaluations, 1);
  EXPECT_FALSE(went_on);
  EXPECT_EQ(failed.code(), StatusCode::kClosed);
  EXPECT_EQ(failed.message(), "peer hung up");
}

TEST(ReturnIfError, LogsFileAndLineAtDebug) {
  if (SPDLOG_ACTIVE_LEVEL > SPDLOG_LEVEL_DEBUG)
    GTEST_SKIP() << "debug lines are compiled out of this build (IMGCAST_LOG_LEVEL)";
  std::ostringstream text;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text);
  spdlog::logger& logger = log();
  const auto level = logger.level();
  logger.sinks().push_back(sink);
  logger.set_level(spdlog::level::debug);
  int evaluations = 0;
  bool went_on = false;
  (void)forward({StatusCode::kIoError, "disk"}, evaluations, went_on);  // only its log matters
  logger.sinks().pop_back();
  logger.set_level(level);
  EXPECT_NE(text.str().find("status_test.cc:"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("I/O error: disk"), std::string::npos) << text.str();
}

}  // namespace
}  // namespace imgcast::transport::test
