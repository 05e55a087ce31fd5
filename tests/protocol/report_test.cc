#include "replicator/report.h"

#include <gtest/gtest.h>

#include <sstream>

namespace imgcast::replicator {
namespace {

Report report_with(std::initializer_list<bool> verified) {
  Report report;
  report.image_bytes = 1000000;
  report.chunk_bytes = 4096;
  int rank = 0;
  for (bool ok : verified) {
    NodeResult node;
    node.rank = rank;
    node.host = "node" + std::to_string(rank++);
    node.verified = ok;
    node.seconds = 0.5;
    node.failure = ok ? "" : "lost parent rank 0";
    report.nodes.push_back(node);
  }
  return report;
}

TEST(Report, ExitCodeSaysAllSomeOrNone) {
  EXPECT_EQ(report_with({true, true}).exit_code(), ExitCode::kSuccess);
  EXPECT_EQ(report_with({true, false}).exit_code(), ExitCode::kPartial);
  EXPECT_EQ(report_with({false, false}).exit_code(), ExitCode::kTransferFailed);
}

TEST(Report, PrintsOneLinePerNodeAndATotal) {
  std::ostringstream out;
  report_with({true, false, true}).print(out);
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5);  // header, 3 nodes, total
  EXPECT_NE(text.find("FAILED: lost parent rank 0"), std::string::npos);
  EXPECT_NE(text.find("2/3 nodes verified"), std::string::npos);
}

}  // namespace
}  // namespace imgcast::replicator
