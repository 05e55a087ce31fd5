// A node that dies mid-transfer: the run is partial naming it, its destination never shows a
// file, the nodes below it re-attach to a live ancestor and finish, and nobody else is left with
// a temporary file. And Ctrl-C of the root removes every temporary file.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/e2e/agent_processes.h"
#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

// Starts `job` and SIGKILLs the agents of `victims` once the root says data flows (its debug
// log), a little into the transfer. Returns the finished run.
// With `fed` >= 0, also waits until the root has heard that rank `fed` holds verified
// bytes, so a node below a victim is sure to resume from a prefix (under a sanitizer, 30 ms
// into the transfer may be before the first chunk reaches rank 2).
ProcessResult run_and_kill(const LocalJob& job, const std::filesystem::path& source,
                           const std::vector<std::string>& extra, const std::vector<int>& victims,
                           int fed = -1) {
  Process replicate(job.command(source, extra));
  wait_until_data_flows(replicate);
  if (fed >= 0) {
    EXPECT_TRUE(wait_for_log(replicate, fmt::format("rank {} reports its first", fed),
                             std::chrono::seconds(30)))
        << "rank " << fed
        << " never reported verified bytes; root said: " << replicate.err_so_far();
  }
  for (int rank : victims) {
    const pid_t victim = find_agent(rank, replicate.pid());
    EXPECT_GT(victim, 0) << "rank " << rank
                         << "'s agent is not running; root said: " << replicate.err_so_far();
    if (victim > 0) {
      EXPECT_EQ(::kill(victim, SIGKILL), 0);
    }
  }
  return replicate.wait(std::chrono::seconds(90));
}

// The killed nodes are the only failures: exit 3 naming them, no file under their DST, and every
// other node (those below the dead relays included) holds a verified copy and no temporary file.
// Returns the --json report.
nlohmann::json expect_only_victims_failed(const LocalJob& job, const std::filesystem::path& source,
                                          const ProcessResult& result,
                                          const std::vector<int>& victims) {
  const std::string tail =
      result.err.substr(result.err.size() > 4000 ? result.err.size() - 4000 : 0);
  EXPECT_EQ(result.exit_code, 3) << tail;
  for (int rank : victims) {
    EXPECT_NE(result.err.find(fmt::format("127.0.0.{}", rank + 1)), std::string::npos) << tail;
  }
  for (int rank = 0; rank < job.nodes; ++rank) {
    const bool victim = std::find(victims.begin(), victims.end(), rank) != victims.end();
    if (victim) {
      EXPECT_FALSE(std::filesystem::exists(job.copy(rank))) << "rank " << rank;
      continue;  // a SIGKILLed process cleans up nothing
    }
    EXPECT_TRUE(files_equal(source, job.copy(rank))) << "rank " << rank << "\n" << tail;
    EXPECT_EQ(list_dir(job.node_dir(rank)), std::vector<std::string>{"image.sif"})
        << "rank " << rank;
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(result.out);
  } catch (const std::exception& error) {
    ADD_FAILURE() << "no JSON report: " << error.what() << "\n" << result.out;
    return doc;
  }
  EXPECT_EQ(doc.at("totals").at("failed"), victims.size());
  return doc;
}

// A debug-logged job of `nodes` with a random image of `bytes`, `topology` with 256 KiB chunks;
// `victims` are killed a little into the transfer, and only they may fail. Returns the root's
// stderr and its --json report.
std::pair<std::string, nlohmann::json> kill_and_check(int nodes, std::uint64_t bytes,
                                                      const std::string& topology,
                                                      const std::vector<int>& victims,
                                                      int fed = -1) {
  LocalJob job(nodes);
  job.log_level = "debug";
  const auto source = job.dir / "source.sif";
  write_random_file(source, bytes, static_cast<std::uint64_t>(nodes));
  const ProcessResult result = run_and_kill(
      job, source, {"--topology", topology, "--chunk-size", "256K", "--json"}, victims, fed);
  return {result.err, expect_only_victims_failed(job, source, result, victims)};
}

TEST(NodeFailure, KilledRelayFailsAloneAndTheNodesBelowItReattach) {
  // In a chain, rank 1 relays to 2 (and through it to 3): rank 2 must re-attach to the root and
  // resume where it was; rank 3 keeps its parent.
  const auto [err, doc] = kill_and_check(4, 512u << 20, "chain", {1}, /*fed=*/2);
  if (doc.contains("nodes")) {
    EXPECT_EQ(doc.at("nodes").at(2).at("reparents"), 1);
    EXPECT_EQ(doc.at("nodes").at(3).at("reparents"), 0);
  }
  // It resumed: the root took rank 2 on where it was, not from chunk 0.
  EXPECT_NE(err.find("rank 0 adopts it"), std::string::npos);
  std::smatch served;
  ASSERT_TRUE(std::regex_search(
      err, served, std::regex(R"(rank 0 serves child rank 2 at \S+ from chunk (\d+))")))
      << err.substr(err.size() > 4000 ? err.size() - 4000 : 0);
  EXPECT_GT(std::stoul(served[1].str()), 0u) << err;
}

TEST(NodeFailure, AKilledRelaysChildrenAllReattachToTheNearestLiveAncestor) {
  // kary:2 over 7 nodes: 0 -> {1, 2}, 1 -> {3, 4}, 2 -> {5, 6}. Rank 1 dies: 3 and 4 go to 0.
  const auto [err, doc] = kill_and_check(7, 256u << 20, "kary:2", {1});
  if (doc.contains("nodes")) {
    EXPECT_EQ(doc.at("nodes").at(3).at("reparents"), 1);
    EXPECT_EQ(doc.at("nodes").at(4).at("reparents"), 1);
    EXPECT_EQ(doc.at("nodes").at(5).at("reparents"), 0);
  }
}

TEST(NodeFailure, AKilledRelayMidTreeLeavesEveryOtherNodeTheWholeTree) {
  // A directory tree rides the same chunk stream: rank 1 dies mid-stream, rank 2 re-attaches to
  // the root and resumes, and every other node still places the complete tree.
  LocalJob job(4);
  job.log_level = "debug";
  const auto source = job.dir / "tree";
  std::filesystem::create_directories(source / "lib");
  for (int f = 0; f < 8; ++f) {
    write_random_file(source / "lib" / fmt::format("big{}.so", f), 48u << 20,
                      static_cast<std::uint64_t>(f) + 100);
  }
  for (int f = 0; f < 200; ++f) {
    std::ofstream(source / fmt::format("small{}", f)) << f;
  }
  std::filesystem::create_symlink("lib/big0.so", source / "link");
  const ProcessResult result =
      run_and_kill(job, source, {"--topology", "chain", "--chunk-size", "256K", "--json"}, {1});
  const std::string tail =
      result.err.substr(result.err.size() > 4000 ? result.err.size() - 4000 : 0);
  EXPECT_EQ(result.exit_code, 3) << tail;
  EXPECT_FALSE(std::filesystem::exists(job.copy(1)));
  for (int rank : {0, 2, 3}) {
    const auto copy = job.copy(rank);  // the tree's directory
    for (int f = 0; f < 8; ++f) {
      const auto name = fmt::format("big{}.so", f);
      EXPECT_TRUE(files_equal(source / "lib" / name, copy / "lib" / name)) << rank << " " << name;
    }
    for (int f = 0; f < 200; f += 37) {
      const auto name = fmt::format("small{}", f);
      EXPECT_TRUE(files_equal(source / name, copy / name)) << rank << " " << name;
    }
    EXPECT_EQ(std::filesystem::read_symlink(copy / "link"), "lib/big0.so") << rank;
    EXPECT_EQ(list_dir(job.node_dir(rank)), std::vector<std::string>{"image.sif"})
        << "rank " << rank << ": a staging file or directory was left";
  }
  const auto doc = nlohmann::json::parse(result.out);
  EXPECT_EQ(doc.at("nodes").at(2).at("reparents"), 1);
}

TEST(NodeFailure, TwoDeadRelaysInARowAreBothPassedOver) {
  // Chain 0 -> 1 -> 2 -> 3 -> 4; ranks 1 and 2 die together: rank 3 climbs to the root.
  const auto [err, doc] = kill_and_check(5, 512u << 20, "chain", {1, 2});
  if (doc.contains("nodes")) {
    EXPECT_GE(doc.at("nodes").at(3).at("reparents").get<int>(), 1);
    EXPECT_EQ(doc.at("nodes").at(4).at("reparents"), 0);
  }
}

TEST(NodeFailure, InATwoTreeTheDeadNodesChildrenReattachInTheirOwnTree) {
  // Two-tree over 9 nodes: the non-root nodes 1..8 sit at in-order positions; rank 4 (position 4
  // of tree 0) is inner in tree 0 with children 2 and 6, and a leaf of tree 1. Killing it orphans
  // 2 and 6 in tree 0 only; their tree-1 parents go on.
  const auto [err, doc] = kill_and_check(9, 256u << 20, "twotree", {4});
  if (doc.contains("nodes")) {
    EXPECT_GE(doc.at("nodes").at(2).at("reparents").get<int>(), 1);
    EXPECT_GE(doc.at("nodes").at(6).at("reparents").get<int>(), 1);
  }
  EXPECT_NE(err.find("in tree 0"), std::string::npos);
}

TEST(NodeFailure, AStalledRelayIsLeftAfterTheStallTimeoutAndTheRestFinish) {
  LocalJob job(4);
  job.log_level = "debug";
  const auto source = job.dir / "source.sif";
  write_random_file(source, 256u << 20, 11);
  std::vector<std::string> argv =
      job.command(source, {"--topology", "chain", "--chunk-size", "256K", "--json"});
  // The harness's 20 s stall timeout, shortened: a stopped relay looks like a cut link.
  auto stall = std::find(argv.begin(), argv.end(), "--stall-timeout");
  ASSERT_NE(stall, argv.end());
  *(stall + 1) = "2";
  Process replicate(argv);
  wait_until_data_flows(replicate);
  const pid_t victim = find_agent(1, replicate.pid());
  ASSERT_GT(victim, 0);
  // SIGSTOP: the process and its sockets stay, nothing moves; only a timeout can tell.
  ASSERT_EQ(::kill(victim, SIGSTOP), 0);
  const ProcessResult result = replicate.wait(std::chrono::seconds(90));
  ::kill(victim, SIGKILL);
  const std::string tail =
      result.err.substr(result.err.size() > 4000 ? result.err.size() - 4000 : 0);
  EXPECT_EQ(result.exit_code, 3) << tail;
  EXPECT_NE(result.err.find("no data from parent rank 1 for 2.0 s"), std::string::npos) << tail;
  EXPECT_FALSE(std::filesystem::exists(job.copy(1)));
  for (int rank : {0, 2, 3}) {
    EXPECT_TRUE(files_equal(source, job.copy(rank))) << "rank " << rank << "\n" << tail;
  }
  const auto doc = nlohmann::json::parse(result.out);
  EXPECT_EQ(doc.at("nodes").at(2).at("reparents"), 1);
  EXPECT_FALSE(doc.at("nodes").at(1).at("verified"));
}

TEST(NodeFailure, InterruptedRootRemovesEveryTemporaryFile) {
  LocalJob job(3);
  const auto source = job.dir / "source.sif";
  write_random_file(source, 512u << 20, 6);
  Process replicate(job.command(source, {"--topology", "chain", "--chunk-size", "256K"}));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline && !has_staging_file(job.node_dir(2))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(has_staging_file(job.node_dir(2)));
  // Like Ctrl-C in a terminal: the whole process group gets SIGINT.
  ::kill(-replicate.pid(), SIGINT);
  const ProcessResult result = replicate.wait(std::chrono::seconds(30));
  EXPECT_NE(result.exit_code, 0);
  for (int rank = 0; rank < job.nodes; ++rank) {
    EXPECT_FALSE(has_staging_file(job.node_dir(rank))) << "rank " << rank;
  }
}

TEST(NodeFailure, ASourceThatShrinksMidTransferFailsTheJobAndLeavesNoCopy) {
  // The root's reading thread meets the new end: the job fails (exit 2) naming the source, and
  // no node keeps a file, final or temporary.
  LocalJob job(3);
  job.log_level = "debug";
  const auto source = job.dir / "source.sif";
  write_random_file(source, 512u << 20, 8);
  Process replicate(job.command(source, {"--topology", "chain", "--chunk-size", "256K"}));
  wait_until_data_flows(replicate);
  ASSERT_EQ(::truncate(source.c_str(), 1u << 20), 0);
  const ProcessResult result = replicate.wait(std::chrono::seconds(60));
  const std::string tail =
      result.err.substr(result.err.size() > 4000 ? result.err.size() - 4000 : 0);
  EXPECT_EQ(result.exit_code, 2) << tail;
  EXPECT_NE(result.err.find("shrank while reading"), std::string::npos) << tail;
  EXPECT_NE(result.err.find(source.string()), std::string::npos) << tail;
  for (int rank = 0; rank < job.nodes; ++rank) {
    EXPECT_TRUE(list_dir(job.node_dir(rank)).empty()) << "rank " << rank;
  }
}

}  // namespace
}  // namespace imgcast::test
