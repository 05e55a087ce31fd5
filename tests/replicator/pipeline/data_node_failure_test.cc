// DataNode at the edges, over real TCP contexts in one process: peers that connect to a node's
// data listener and are refused (garbage, the wrong key, a Region for a rank or tree that is not
// theirs) while the transfer goes on, a parent that dies mid-transfer, and the orphan's
// reparent() to another node, which resumes from its verified prefix; a node whose tmpfs fills up
// under the receive.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "replicator/pipeline/data_node.h"
#include "replicator/protocol/auth.h"
#include "replicator/protocol/messages.h"
#include "tests/replicator/pipeline/pipeline_cluster.h"
#include "transport/tcp/tcp_context.h"

namespace imgcast::replicator::test {
namespace {

namespace tp = transport;
using std::chrono::milliseconds;

// A hand-driven peer on a Context of its own: it connects to a node's data listener and says
// what the test tells it to (a real child's handshake, or not).
class RawPeer {
 public:
  explicit RawPeer(std::span<const std::byte> address)
      : context_(tp::tcp::make_tcp_context({})), endpoint_(context_->connect(address, kTimeout)) {}

  void send(std::span<const std::byte> bytes) {
    ASSERT_TRUE(endpoint_->send_control(bytes).is_ok());
  }
  void send(const Message& message) { send(encode(message)); }
  // Takes what has come (without blocking): the messages it was sent, and whether it was closed.
  void poll() {
    std::vector<tp::Completion> events;
    ASSERT_TRUE(context_->poll(events, milliseconds(0)).is_ok());
    for (auto& event : events) {
      if (auto* control = std::get_if<tp::ControlArrived>(&event)) {
        if (auto message = decode(control->bytes)) {
          received_.push_back(std::move(*message));
        }
      } else if (std::holds_alternative<tp::PeerFailed>(event)) {
        closed_ = true;
      } else if (std::holds_alternative<tp::WriteArrived>(event)) {
        ++writes_;
      }
    }
  }
  template <typename T>
  const T* last() const {
    return received_.empty() ? nullptr : std::get_if<T>(&received_.back());
  }
  bool closed() const noexcept { return closed_; }
  int writes() const noexcept { return writes_; }
  tp::Context& context() { return *context_; }

 private:
  static constexpr milliseconds kTimeout{2000};
  std::unique_ptr<tp::Context> context_;
  std::unique_ptr<tp::Endpoint> endpoint_;
  std::vector<Message> received_;
  bool closed_ = false;
  int writes_ = 0;
};

TEST(DataNodeRefusal, GarbageAndWrongKeyPeersAreRefusedWhileTheTransferCompletes) {
  PipelineCluster cluster({.topology = "chain", .size = 2});
  RawPeer garbage(cluster.address(0));
  const std::vector<std::byte> junk(300, std::byte{0xee});
  garbage.send(junk);
  // The wrong key for this job, claiming the real child's rank.
  const JobKey wrong_key = JobKey::random();
  InitiatorHandshake impostor_handshake(wrong_key, cluster.job(), Channel::kData, 1);
  RawPeer impostor(cluster.address(0));
  impostor.send(impostor_handshake.hello());
  cluster.start_all();
  bool proof_sent = false;
  ASSERT_TRUE(cluster.run_until([&] {
    garbage.poll();
    impostor.poll();
    if (const auto* challenge = impostor.last<Challenge>(); challenge && !proof_sent) {
      // It cannot check the node's MAC (nor make a proof) without the key: it guesses.
      EXPECT_FALSE(impostor_handshake.answer(*challenge));
      impostor.send(Proof{});
      proof_sent = true;
    }
    return garbage.closed() && impostor.closed() && cluster.all_complete();
  }));
  EXPECT_TRUE(proof_sent);
  EXPECT_EQ(garbage.writes() + impostor.writes(), 0);
  EXPECT_TRUE(cluster.holds_source(1));
  EXPECT_EQ(cluster.node(1).digest(), cluster.source_digest());
}

// A peer with the key that asks the root to serve it as `rank` in `tree`: the Failed it is sent.
std::string refusal_for(std::uint32_t rank, std::uint8_t tree) {
  PipelineCluster cluster({.topology = "chain", .size = 2});
  cluster.start(0);
  RawPeer peer(cluster.address(0));
  InitiatorHandshake handshake(cluster.key(), cluster.job(), Channel::kData, rank);
  std::vector<std::byte> memory(cluster.source().size());
  const auto region = peer.context().register_memory(memory, tp::Access::kReadWrite);
  peer.send(handshake.hello());
  bool introduced = false;
  const bool refused = cluster.run_until([&] {
    peer.poll();
    if (const auto* challenge = peer.last<Challenge>(); challenge && !introduced) {
      const auto proof = handshake.answer(*challenge);
      EXPECT_TRUE(proof);
      peer.send(*proof);
      peer.send(Region{region->descriptor().encode(), 0, tree});
      introduced = true;
    }
    return peer.last<Failed>() != nullptr;
  });
  EXPECT_TRUE(refused);
  EXPECT_EQ(peer.writes(), 0);
  return refused ? peer.last<Failed>()->reason : std::string();
}

TEST(DataNodeRefusal, RegionForAnotherTreeIsRefusedWithFailed) {
  EXPECT_EQ(refusal_for(1, 1),
            "rank 0 refused this node: asks for tree 1, in which rank 0 is not its parent");
}

TEST(DataNodeRefusal, RegionForAnotherRankIsRefusedWithFailed) {
  EXPECT_EQ(refusal_for(5, 0),
            "rank 0 refused this node: claims rank 5, which is not a child of rank 0");
}

TEST(DataNodeRefusal, ANodeThatConnectsToTheWrongParentIsOrphanedWithTheReason) {
  PipelineCluster cluster({.topology = "chain", .size = 3});
  cluster.start(0);
  cluster.start(2, {0});  // its parent is rank 1, not the root
  ASSERT_TRUE(cluster.run_until([&] { return cluster.node(2).orphaned(0).has_value(); }));
  EXPECT_NE(cluster.node(2).orphaned(0)->find("claims rank 2, which is not a child of rank 0"),
            std::string::npos)
      << *cluster.node(2).orphaned(0);
  EXPECT_EQ(cluster.node(2).chunks_verified(), 0u);
}

// A chain root -> relay -> leaf in which the relay dies once the leaf holds a few chunks.
class RelayDeath : public ::testing::Test {
 protected:
  RelayDeath() : cluster_({.topology = "chain", .size = 3, .image_bytes = (6u << 20) + 77}) {}

  void kill_relay_mid_transfer() {
    cluster_.start_all();
    ASSERT_TRUE(cluster_.run_until([&] { return cluster_.node(2).chunks_verified() >= 4; }));
    ASSERT_FALSE(cluster_.node(2).complete());
    cluster_.kill(1);
    ASSERT_TRUE(cluster_.run_until([&] { return cluster_.node(2).orphaned(0).has_value(); }));
  }

  PipelineCluster cluster_;
};

TEST_F(RelayDeath, LeafIsOrphanedInItsTree) {
  ASSERT_NO_FATAL_FAILURE(kill_relay_mid_transfer());
  const std::string& why = *cluster_.node(2).orphaned(0);
  EXPECT_NE(why.find("lost parent rank 1 after"), std::string::npos) << why;
  EXPECT_FALSE(cluster_.node(2).complete());
  EXPECT_FALSE(cluster_.node(2).failure());
  // The root goes on with its own copy.
  ASSERT_TRUE(cluster_.run_until([&] { return cluster_.node(0).complete(); }));
}

TEST_F(RelayDeath, ReparentToTheRootResumesFromTheVerifiedPrefix) {
  ASSERT_NO_FATAL_FAILURE(kill_relay_mid_transfer());
  // What the root session does: the lost parent's live ancestor adopts the orphan, and the
  // orphan connects there.
  const std::uint32_t prefix = cluster_.node(2).chunks_verified();
  std::vector<std::uint32_t> resent;
  cluster_.on_event = [&](int rank, tp::Completion& event) {
    if (const auto* arrived = std::get_if<tp::WriteArrived>(&event); arrived && rank == 2) {
      resent.push_back(arrived->imm);
    }
  };
  cluster_.node(0).adopt(2, 0);
  cluster_.node(2).reparent(0, cluster_.address(0), milliseconds(2000), "parent rank 0");
  EXPECT_FALSE(cluster_.node(2).orphaned(0));
  ASSERT_TRUE(cluster_.run_until([&] { return cluster_.node(2).complete(); }));
  ASSERT_FALSE(resent.empty());
  EXPECT_EQ(resent.front(), prefix);
  EXPECT_EQ(resent.size(), cluster_.chunk_count() - prefix);
  EXPECT_TRUE(cluster_.holds_source(2));
  EXPECT_EQ(cluster_.node(2).digest(), cluster_.source_digest());
  EXPECT_FALSE(cluster_.node(2).orphaned(0));
}

// The agent's tmpfs fills up under the transfer (another process takes the space after the
// check): the TCP receive lands through the file, the write fails with ENOSPC, and the node fails
// with one line naming the place; it does not take it for a bad parent and re-parent.
TEST(DataNodeNoSpace, ATmpfsThatFillsUpUnderTheReceiveFailsTheNodeWithOneLine) {
  imgcast::test::TempDir dir;
  const auto small = dir / "small";
  std::filesystem::create_directories(small);
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=4m") != 0)
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << std::strerror(errno);
  struct Unmount {
    std::filesystem::path at;
    ~Unmount() { ::umount2(at.c_str(), MNT_DETACH); }
  } unmount{small};
  PipelineCluster cluster({.topology = "chain",
                           .size = 2,
                           .image_bytes = 3u << 20,
                           .stage_in = {std::filesystem::path(), small}});
  cluster.start(1);  // its 3 MiB fit the 4 MiB: the check passes
  {
    std::ofstream other(small / "other", std::ios::binary);
    const std::vector<char> block(1 << 20, 'o');
    for (int i = 0; i < 2; ++i)
      other.write(block.data(), static_cast<std::streamsize>(block.size()));
  }
  cluster.start(0);
  ASSERT_TRUE(cluster.run_until([&] { return cluster.node(1).failure().has_value(); }));
  const std::string why = *cluster.node(1).failure();
  EXPECT_NE(why.find("no space left for the image in " + small.string()), std::string::npos) << why;
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  EXPECT_FALSE(cluster.node(1).orphaned(0)) << *cluster.node(1).orphaned(0);
}

}  // namespace
}  // namespace imgcast::replicator::test
