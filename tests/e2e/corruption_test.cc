// Bytes flipped in flight by a real proxy process between two agents (tests/support/flip_proxy):
// a corrupt chunk is fetched again and every copy verifies; a parent whose link keeps corrupting
// is left for the next live ancestor; and a replay of the child's recorded handshake, sent to
// the parent on a connection of its own, is refused while the transfer goes on.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

using namespace std::chrono_literals;

// A chain 0 -> 1 -> 2 -> 3 whose link from rank 1 to rank 2 runs through the proxy.
struct FlippedChain {
  explicit FlippedChain(const std::string& proxy_args, std::uint64_t bytes = 32u << 20) : job(4) {
    job.rsh = FLIP_RSH;
    job.log_level = "info";
    // Ports from this process's id, so parallel test runs do not collide; below Linux's
    // ephemeral range (32768 and up), where any test's outgoing connection may hold one.
    const int base = 12000 + static_cast<int>(::getpid() % 10000) * 2;
    env = {"IMGCAST_FLIP_HOST=127.0.0.2",
           fmt::format("IMGCAST_FLIP_PORT={}", base),
           fmt::format("IMGCAST_FLIP_LISTEN=127.0.0.2:{}", base + 1),
           std::string("IMGCAST_FLIP_PROXY=") + FLIP_PROXY,
           "IMGCAST_FLIP_ARGS=" + proxy_args,
           "IMGCAST_FLIP_LOG=" + (job.dir / "proxy.log").string()};
    source = job.dir / "source.sif";
    write_random_file(source, bytes, 13);
  }

  ProcessResult run_it() {
    return run(job.command(source, {"--topology", "chain", "--chunk-size", "256K", "--json"}), 120s,
               env);
  }
  std::string proxy_log() const {
    std::ifstream in(job.dir / "proxy.log");
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

  LocalJob job;
  std::vector<std::string> env;
  std::filesystem::path source;
};

TEST(Corruption, ACorruptChunkIsFetchedAgainAndEveryCopyVerifies) {
  FlippedChain chain("--flip 5,9");
  const ProcessResult result = chain.run_it();
  ASSERT_EQ(result.exit_code, 0) << result.err << chain.proxy_log();
  chain.job.expect_all_copies_of(chain.source);
  EXPECT_NE(chain.proxy_log().find("flipped write 9"), std::string::npos) << chain.proxy_log();
  const auto doc = nlohmann::json::parse(result.out);
  EXPECT_EQ(doc.at("nodes").at(2).at("refetched_chunks"), 2) << result.err;
  EXPECT_EQ(doc.at("nodes").at(2).at("reparents"), 0);
  EXPECT_EQ(doc.at("nodes").at(3).at("refetched_chunks"), 0);
  EXPECT_NE(result.err.find("failed its xxh3-64 check; asking for it again"), std::string::npos)
      << result.err;
}

TEST(Corruption, AParentWhoseLinkKeepsCorruptingIsLeftForTheNextAncestor) {
  FlippedChain chain("--flip-all");
  const ProcessResult result = chain.run_it();
  ASSERT_EQ(result.exit_code, 0) << result.err << chain.proxy_log();
  chain.job.expect_all_copies_of(chain.source);
  const auto doc = nlohmann::json::parse(result.out);
  // Three bad chunks are fetched again; the fourth gives the parent up
  // (DataNode::kMaxBadChunksPerParent).
  EXPECT_EQ(doc.at("nodes").at(2).at("refetched_chunks"), 4) << result.err;
  EXPECT_EQ(doc.at("nodes").at(2).at("reparents"), 1);
  EXPECT_NE(result.err.find("rank 0 adopts it"), std::string::npos) << result.err;
}

TEST(Corruption, AReplayedHandshakeIsRefusedAndTheTransferGoesOn) {
  // Slowed to 100 MB/s, so the transfer (64 MiB: 0.67 s at least) still runs when the replay comes
  // (20 ms after the handshake).
  FlippedChain chain("--flip 3 --replay --rate 100", 64u << 20);
  const ProcessResult result = chain.run_it();
  ASSERT_EQ(result.exit_code, 0) << result.err << chain.proxy_log();
  chain.job.expect_all_copies_of(chain.source);
  const std::string log = chain.proxy_log();
  // The replay got the parent's fresh challenge and nothing more: then it was cut off.
  EXPECT_NE(log.find("replay: sent"), std::string::npos) << log;
  EXPECT_NE(log.find("then the parent closed"), std::string::npos) << log;
  EXPECT_NE(result.err.find("refused data connection from 127.0.0.1:"), std::string::npos)
      << result.err << log;
  EXPECT_NE(result.err.find("failed authentication (wrong job key)"), std::string::npos)
      << result.err;
}

}  // namespace
}  // namespace imgcast::test
