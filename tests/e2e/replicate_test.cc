// End-to-end: real imgcast processes (a root and one agent per "node") on loopback, every copy
// compared byte for byte with the source.
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

constexpr std::uint64_t kChunk = 64 * 1024;

struct Case {
  int nodes;
  std::uint64_t bytes;
};

class ReplicateMatrix : public ::testing::TestWithParam<Case> {};

TEST_P(ReplicateMatrix, EveryNodeGetsAnIdenticalCopy) {
  const Case c = GetParam();
  LocalJob job(c.nodes);
  const auto source = job.dir / "source.sif";
  write_random_file(source, c.bytes, c.bytes + 7);

  const ProcessResult result = run(job.command(source, {"--chunk-size", "64K"}));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  job.expect_all_copies_of(source);
  // One report line per node.
  for (int rank = 0; rank < c.nodes; ++rank) {
    EXPECT_NE(result.out.find(fmt::format("127.0.0.{}", rank + 1)), std::string::npos);
  }
  EXPECT_NE(result.out.find(fmt::format("total: {}/{} nodes verified", c.nodes, c.nodes)),
            std::string::npos)
      << result.out;
}

std::vector<Case> matrix() {
  std::vector<Case> cases;
  for (int nodes : {1, 2, 3, 7, 16}) {
    for (std::uint64_t bytes :
         {std::uint64_t{0}, std::uint64_t{1}, kChunk - 1, kChunk, kChunk + 1}) {
      cases.push_back({nodes, bytes});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(NodesBySize, ReplicateMatrix, ::testing::ValuesIn(matrix()),
                         [](const auto& info) {
                           return fmt::format("n{}_bytes{}", info.param.nodes, info.param.bytes);
                         });

// Every topology, several job sizes, an image of many chunks so that relays forward for real.
class ReplicateTopologies : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(ReplicateTopologies, EveryNodeGetsAnIdenticalCopy) {
  const auto& [topology, nodes] = GetParam();
  LocalJob job(nodes);
  const auto source = job.dir / "source.sif";
  write_random_file(source, (24u << 20) + 5, nodes);
  const ProcessResult result =
      run(job.command(source, {"--chunk-size", "64K", "--topology", topology}));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  job.expect_all_copies_of(source);
  EXPECT_NE(result.out.find(topology == "kary:1" ? "chain" : topology), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Kinds, ReplicateTopologies,
                         ::testing::Combine(::testing::Values("binomial", "chain", "kary:2",
                                                              "kary:3", "twotree"),
                                            ::testing::Values(2, 5, 9)),
                         [](const auto& info) {
                           std::string name = std::get<0>(info.param) + "_n" +
                                              std::to_string(std::get<1>(info.param));
                           std::replace(name.begin(), name.end(), ':', '_');
                           return name;
                         });

// The two-tree over 16 nodes, with an image whose last chunk is short and an odd chunk count (the
// two trees carry different numbers of chunks), and the empty and one-chunk images.
TEST(Replicate, TwoTreeOverSixteenNodesWithOddChunkCounts) {
  for (const std::uint64_t bytes : {0ull, 1000ull, (9ull << 20) + 77}) {
    LocalJob job(16);
    const auto source = job.dir / "source.sif";
    write_random_file(source, bytes, 16);
    const ProcessResult result =
        run(job.command(source, {"--chunk-size", "64K", "--topology", "twotree"}));
    ASSERT_EQ(result.exit_code, 0) << bytes << " bytes\n" << result.err;
    job.expect_all_copies_of(source);
  }
}

TEST(Replicate, HundredMebibytesToSevenNodesWithDefaultChunks) {
  LocalJob job(7);
  const auto source = job.dir / "source.sif";
  write_random_file(source, 100u << 20, 99);
  const ProcessResult result = run(job.command(source));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  job.expect_all_copies_of(source);
}

TEST(Replicate, TheSourceIsOpenedOnceForTheWholeJob) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the LD_PRELOAD open counter cannot load into AddressSanitizer processes; the "
                  "plain build runs this test";
#endif
  LocalJob job(7);
  const auto source = job.dir / "source.sif";
  write_random_file(source, 3 * kChunk + 5);
  struct stat st {};
  ASSERT_EQ(::stat(source.c_str(), &st), 0);
  const auto log = job.dir / "opens.log";
  const ProcessResult result =
      run(job.command(source, {"--chunk-size", "64K"}), std::chrono::seconds(60),
          {std::string("LD_PRELOAD=") + OPEN_COUNTER_LIBRARY,
           fmt::format("IMGCAST_COUNT_OPENS_OF={}:{}", st.st_dev, st.st_ino),
           "IMGCAST_COUNT_OPENS_LOG=" + log.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  job.expect_all_copies_of(source);
  std::ifstream in(log);
  int opens = 0;
  for (std::string line; std::getline(in, line);) {
    ++opens;
  }
  EXPECT_EQ(opens, 1) << "the source was opened " << opens << " times";
}

TEST(Replicate, ModeOptionSetsTheFileMode) {
  LocalJob job(2);
  const auto source = job.dir / "source.sif";
  write_random_file(source, 1000);
  const ProcessResult result = run(job.command(source, {"--mode", "0600"}));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  for (int rank = 0; rank < 2; ++rank) {
    struct stat st {};
    ASSERT_EQ(::stat(job.copy(rank).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
  }
}

#if IMGCAST_HAVE_UCX
// UCX prints its warnings to stdout, in the root and in every agent (whose stdout reaches the
// root's): --json's stdout must still hold the document alone, and the warnings go to stderr.
TEST(Replicate, JsonStaysParseableWhenUcxWarns) {
  LocalJob job(3);
  const auto source = job.dir / "source.sif";
  write_random_file(source, 300000, 6);
  const ProcessResult result =
      run(job.command(source, {"--json", "--transport", "ucx"}), std::chrono::seconds(120),
          {"UCX_TLS=tcp", "UCX_IMGCAST_TEST_UNUSED_VARIABLE=1"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto doc = nlohmann::json::parse(result.out);
  EXPECT_EQ(doc.at("totals").at("verified"), 3);
  EXPECT_NE(result.err.find("UCX_IMGCAST_TEST_UNUSED_VARIABLE"), std::string::npos)
      << "UCX no longer warns of an unused variable, so this test shows nothing: " << result.err;
}
#endif

TEST(Replicate, JsonSummaryFollowsTheSchema) {
  LocalJob job(3);
  const auto source = job.dir / "source.sif";
  write_random_file(source, 300000, 5);
  const ProcessResult result = run(job.command(source, {"--json"}));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto doc = nlohmann::json::parse(result.out);  // stdout holds the document alone
  EXPECT_EQ(doc.at("schema"), "imgcast.report.v1");
  EXPECT_EQ(doc.at("image_bytes"), 300000);
  EXPECT_EQ(doc.at("digest_xxh3_128").get<std::string>().size(), 32u);
  EXPECT_FALSE(doc.at("topology").get<std::string>().empty());
  EXPECT_EQ(doc.at("transport"), "tcp");
  EXPECT_GT(doc.at("chunk_bytes").get<int>(), 0);
  EXPECT_TRUE(doc.at("stragglers").is_array());
  ASSERT_EQ(doc.at("nodes").size(), 3u);
  for (int rank = 0; rank < 3; ++rank) {
    const auto& node = doc.at("nodes").at(rank);
    EXPECT_EQ(node.at("rank"), rank);
    EXPECT_EQ(node.at("host"), fmt::format("127.0.0.{}", rank + 1));
    EXPECT_EQ(node.at("destination"), job.copy(rank).string());
    EXPECT_TRUE(node.at("verified").get<bool>());
    EXPECT_FALSE(node.at("cached").get<bool>());
    EXPECT_TRUE(node.at("failure").is_null());
    EXPECT_TRUE(node.at("mb_per_s").is_number());
  }
  EXPECT_EQ(doc.at("totals").at("verified"), 3);
  EXPECT_EQ(doc.at("totals").at("cached"), 0);
  EXPECT_EQ(doc.at("totals").at("failed"), 0);
  EXPECT_EQ(doc.at("totals").at("exit_code"), 0);
}

TEST(Replicate, ProgressLineOnATerminalOnly) {
  LocalJob job(3);
  const auto source = job.dir / "source.sif";
  write_random_file(source, 512u << 20, 8);
  // A real pseudo-terminal: util-linux `script` runs the command with its stdout on a pty.
  std::string command;
  for (const auto& arg : job.command(source, {"--topology", "chain", "--chunk-size", "64K"})) {
    command += "'" + arg + "' ";
  }
  const ProcessResult on_tty = run({"script", "-qfec", command, "/dev/null"});
  ASSERT_EQ(on_tty.exit_code, 0) << on_tty.out << on_tty.err;
  EXPECT_NE(on_tty.out.find("\r\033[K["), std::string::npos) << "no progress line on a tty";
  EXPECT_NE(on_tty.out.find("hosts done"), std::string::npos);
  // And before data moves, from the start: not silence while the agents start.
  EXPECT_NE(on_tty.out.find("\r\033[K[setup "), std::string::npos) << "no setup line";
  EXPECT_NE(on_tty.out.find("agents joined"), std::string::npos);
  EXPECT_NE(on_tty.out.find("total: 3/3 nodes verified"), std::string::npos);

  for (int rank = 0; rank < 3; ++rank)
    std::filesystem::remove(job.copy(rank));
  const ProcessResult piped = run(job.command(source, {"--chunk-size", "64K"}));
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.out.find('\r'), std::string::npos) << "control characters in a pipe";

  for (int rank = 0; rank < 3; ++rank)
    std::filesystem::remove(job.copy(rank));
  auto quiet = job.command(source);
  quiet.insert(quiet.begin() + 1, "-q");
  const ProcessResult silent = run(quiet);
  ASSERT_EQ(silent.exit_code, 0) << silent.err;
  EXPECT_TRUE(silent.out.empty()) << silent.out;
  job.expect_all_copies_of(source);
}

TEST(Replicate, DemoRunsAndChecksEveryCopy) {
  TempDir scratch;
  const ProcessResult result = run(
      {IMGCAST_BINARY, "demo", "--nodes", "3", "--size", "8M", "--dir", scratch.path().string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("total: 3/3 nodes verified"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("byte-for-byte check: 3/3 copies identical"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("whole command: "), std::string::npos) << result.out;
  EXPECT_TRUE(list_dir(scratch.path()).empty()) << "the demo must clean up after itself";
}

}  // namespace
}  // namespace imgcast::test

namespace imgcast::test {
namespace {

// --rdma-device reaches every agent's command line (the verbs backend of an agent started over
// ssh sees no environment of ours), and a malformed one is a usage error.
TEST(Replicate, TheRdmaDeviceIsForwardedToEveryAgent) {
  LocalJob job(3);
  job.rsh = LATE_RSH;
  const auto source = job.dir / "source.sif";
  write_random_file(source, 100000, 8);
  const std::string record = (job.dir / "record").string();
  std::vector<std::string> argv = job.command(source);
  argv.insert(argv.begin() + 1, {"--rdma-device", "mlx5_9:1"});
  const ProcessResult result = run(argv, std::chrono::seconds(60),
                                   {"IMGCAST_TEST_RECORD=" + record, "IMGCAST_TEST_DELAY=0"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  for (const char* host : {"127.0.0.2", "127.0.0.3"}) {
    std::ifstream in(record + "." + host);
    const std::string command((std::istreambuf_iterator<char>(in)), {});
    EXPECT_NE(command.find("'--rdma-device' 'mlx5_9:1'"), std::string::npos) << command;
  }
  argv[2] = "mlx5;rm";
  EXPECT_EQ(run(argv).exit_code, 1);
}

}  // namespace
}  // namespace imgcast::test
