#include "replicator/session/report.h"

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

TEST(Report, StragglersAreVerifiedNodesSlowerThanOneAndAHalfTheMedian) {
  Report report = report_with({true, true, true, true, false});
  report.nodes[0].seconds = 1.0;
  report.nodes[1].seconds = 1.1;
  report.nodes[2].seconds = 1.4;  // below 1.5 x the median (1.25)
  report.nodes[3].seconds = 2.0;  // above
  report.nodes[4].seconds = 9.0;  // failed: not a straggler
  EXPECT_EQ(report.stragglers(), std::vector<int>{3});
}

TEST(Report, ShowsEachNodesLinkTransport) {
  EXPECT_EQ(link_kinds_name(0), "");
  EXPECT_EQ(link_kinds_name(1u << 1), "tcp");
  EXPECT_EQ(link_kinds_name((1u << 1) | (1u << 2)), "ucx+tcp");
  Report report = report_with({true, true});
  report.nodes[1].transport = "tcp";
  std::ostringstream text, json;
  report.print(text);
  report.print_json(json);
  EXPECT_NE(text.str().find(" tcp "), std::string::npos) << text.str();
  EXPECT_NE(json.str().find("\"transport\": \"tcp\""), std::string::npos) << json.str();
  EXPECT_NE(json.str().find("\"transport\": null"), std::string::npos) << json.str();
}

TEST(Report, JsonCarriesEveryNodeAndTheTotals) {
  std::ostringstream out;
  report_with({true, false}).print_json(out);
  const std::string text = out.str();
  EXPECT_NE(text.find("\"schema\": \"imgcast.report.v1\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"failure\": \"lost parent rank 0\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"exit_code\": 3"), std::string::npos) << text;
}

}  // namespace
}  // namespace imgcast::replicator
