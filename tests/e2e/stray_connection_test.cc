// A port scanner on the cluster network: plain TCP connections to every port the root and its
// agents listen on (control and data), closed at once, sending garbage, frame headers that look
// right with absurd lengths, half a handshake (a Hello for the right job, then silence), or held
// open and silent, before the plan, during the transfer and at the finish. None of them may crash
// or stall a node: the run verifies on every node and exits 0, with no file left behind.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include "replicator/protocol/auth.h"
#include "replicator/protocol/job_secret.h"
#include "replicator/protocol/messages.h"
#include "tests/e2e/harness.h"
#include "tests/support/listening_ports.h"
#include "transport/tcp/frame_header.h"

namespace imgcast::test {
namespace {

using namespace std::chrono_literals;

enum class Phase { kBeforePlan, kTransfer, kFinish };

// Where the run is, from what the root's stderr (debug level: the agents log there too) says.
Phase phase_of(const std::string& log) {
  if (log.find("verified and placed") != std::string::npos)
    return Phase::kFinish;
  if (log.find("serves child rank") != std::string::npos)
    return Phase::kTransfer;
  if (log.find("take part in the transfer") == std::string::npos)
    return Phase::kBeforePlan;
  return Phase::kTransfer;  // planned; the first child is connecting
}

// One TCP connection to host:port; -1 when nobody listens (any more).
int connect_to(const std::string& host, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

namespace tcp = transport::tcp;

void send_all(int fd, std::span<const std::byte> bytes) {
  (void)!::write(fd, bytes.data(), bytes.size());  // a knocker does not care whether it lands
}

// Frame headers that look right and announce absurd lengths: a control frame of 1 GiB, a write
// of 4 GiB - 1 at an offset past any image into a region nobody registered.
void send_absurd_headers(int fd) {
  std::array<std::byte, tcp::FrameHeader::kBytes> bytes;
  tcp::FrameHeader control;
  control.type = tcp::FrameType::kControl;
  control.length = 1u << 30;
  control.encode(bytes);
  send_all(fd, bytes);
  tcp::FrameHeader write;
  write.type = tcp::FrameType::kWrite;
  write.region_id = 7;
  write.length = 0xffffffffu;
  write.write_key = 0x1234567890abcdefull;
  write.offset = 1ull << 62;
  write.encode(bytes);
  send_all(fd, bytes);
}

// A handshake that stops halfway: a well-formed Hello for the right job (read off the rsh's
// stdin: an insider's knowledge, the worst case) claiming `rank`, and then never a Proof. On the
// control port it claims the late agent's rank, which must not keep that agent out.
void send_hello(int fd, const replicator::JobSecret& secret, replicator::Channel channel,
                std::uint32_t rank) {
  const replicator::JobKey wrong_key{};
  const replicator::InitiatorHandshake handshake(wrong_key, secret.job, channel, rank);
  const std::vector<std::byte> body = replicator::encode(handshake.hello());
  tcp::FrameHeader header;
  header.type = tcp::FrameType::kControl;
  header.length = static_cast<std::uint32_t>(body.size());
  std::array<std::byte, tcp::FrameHeader::kBytes> bytes;
  header.encode(bytes);
  send_all(fd, bytes);
  send_all(fd, body);
}

std::optional<replicator::JobSecret> read_secret(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return replicator::JobSecret::parse(line);
}

TEST(StrayConnections, EveryListeningPortKnockedInEveryPhaseAndTheRunStillVerifies) {
  // A chain 0 -> 1 -> 2 -> 3; rank 3's agent starts 2 s late, so the root (and ranks 1 and 2,
  // joined and listening) wait before the plan while the scanner knocks.
  LocalJob job(4);
  job.log_level = "debug";
  const auto rsh = job.dir / "slow-rsh";
  {
    std::ofstream script(rsh);
    script << "#!/bin/sh\nIFS= read -r secret\nprintf '%s\\n' \"$secret\" > " +
                  (job.dir / "secret").string() + "\n[ \"$1\" = 127.0.0.4 ] && sleep 2\n"
              "printf '%s\\n' \"$secret\" | exec /bin/sh -c \"$2\"\n";
  }
  std::filesystem::permissions(rsh, std::filesystem::perms::owner_all);
  job.rsh = rsh.string();
  const auto source = job.dir / "source.sif";
  write_random_file(source, 384u << 20, 97);
  Process root(job.command(source, {"--topology", "chain", "--json"}));

  // Knocks: [phase][who] -> connections made (who: 0 the root, 1 an agent).
  std::map<std::pair<Phase, int>, int> knocks;
  std::vector<int> held;  // silent connections, kept open to the end (beyond any admission cap)
  std::atomic<bool> stop{false};
  int halfway = 0;  // handshakes that stopped after a Hello for the right job
  std::thread scanner([&] {
    for (int turn = 0; !stop; ++turn) {
      const Phase phase = phase_of(root.err_so_far());
      for (const ListeningPort& port : listening_ports_of_tree(root.pid())) {
        const int fd = connect_to(port.host, port.port);
        if (fd < 0)
          continue;
        ++knocks[{phase, port.pid == root.pid() ? 0 : 1}];
        std::optional<replicator::JobSecret> secret;
        switch (turn % 5) {
          case 0:  // connect and hang up
            ::close(fd);
            break;
          case 1: {  // garbage: no frame at all
            const char junk[] = "GET / HTTP/1.0\r\n\r\nSSH-2.0-scanner\r\n";
            (void)!::write(fd, junk, sizeof junk);
            ::close(fd);
            break;
          }
          case 3:  // valid-looking headers, absurd lengths
            send_absurd_headers(fd);
            ::close(fd);
            break;
          case 4:  // half a handshake, then silence
            secret = read_secret(job.dir / "secret");
            if (secret) {
              ++halfway;
              // The root's data port refuses a control Hello at once; its control port waits.
              send_hello(fd, *secret,
                         port.pid == root.pid() ? replicator::Channel::kControl
                                                : replicator::Channel::kData,
                         3);
            }
            [[fallthrough]];
          default:  // connect and say nothing
            if (held.size() < 200) {
              held.push_back(fd);
            } else {
              ::close(fd);
            }
        }
      }
      std::this_thread::sleep_for(2ms);
    }
  });
  const ProcessResult result = root.wait(120s);
  stop = true;
  scanner.join();
  for (int fd : held)
    ::close(fd);

  ASSERT_EQ(result.exit_code, 0) << result.err.substr(
      result.err.size() > 6000 ? result.err.size() - 6000 : 0);
  job.expect_all_copies_of(source);
  // The scanner reached the root and an agent before the plan and during the transfer, and
  // somebody at the finish.
  EXPECT_GT((knocks[{Phase::kBeforePlan, 0}]), 0);
  EXPECT_GT((knocks[{Phase::kBeforePlan, 1}]), 0);
  EXPECT_GT((knocks[{Phase::kTransfer, 0}]), 0);
  EXPECT_GT((knocks[{Phase::kTransfer, 1}]), 0);
  EXPECT_GT((knocks[{Phase::kFinish, 0}] + knocks[{Phase::kFinish, 1}]), 0);
  EXPECT_GT(halfway, 0);
  int total = 0;
  for (const auto& [where, count] : knocks)
    total += count;
  std::printf("knocks survived: %d (%d half handshakes)\n", total, halfway);
  // The data listeners' Admission met them (refused, or closed before they were served).
  EXPECT_NE(result.err.find("data connection from 127.0.0.1:"), std::string::npos);
  EXPECT_NE(result.err.find("control connection from 127.0.0.1:"), std::string::npos);
}

}  // namespace
}  // namespace imgcast::test
