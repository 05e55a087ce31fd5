// A swarm at the root's control port: ~1,000 connections from one host (127.0.0.200) that never
// authenticate, half silent, half sending one frame header that announces a large control
// message and then nothing, while a real job waits for its last agent. The root must stay
// bounded (memory, descriptors, log lines) and the run must verify on every node; and with a
// descriptor limit the swarm exceeds, the root must not spin on its listening socket, must say
// so in a line or two, and must let the real agent in once the swarm is gone.
//
// The figures it measures are printed ("swarm: ...") for the project's notes.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>

#include "tests/e2e/harness.h"
#include "tests/support/listening_ports.h"
#include "tests/support/proc_stats.h"
#include "transport/endpoint.h"
#include "transport/tcp/frame_header.h"

namespace imgcast::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace tcp = transport::tcp;

constexpr int kSwarm = 1000;
constexpr const char* kSwarmHost = "127.0.0.200";  // not a node of the job: another machine

// The root's control port, from the agent command line the rsh wrapper saved ("--control
// 'HOST:PORT'"); 0 until an agent was started.
std::uint16_t control_port(const std::filesystem::path& saved) {
  std::ifstream in(saved);
  const std::string command((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto at = command.find("--control '");
  const auto end = at == std::string::npos ? at : command.find('\'', at + 11);
  if (end == std::string::npos) {
    return 0;
  }
  const std::string address = command.substr(at + 11, end - at - 11);
  return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

// One swarm connection from kSwarmHost to 127.0.0.1:port; -1 if it could not be made. Odd ones
// send a control frame header and no payload: a quarter announce the most an unauthenticated
// peer may send (16 KiB, which the root takes and waits for), a quarter 1 GiB (refused at once).
int swarm_connection(std::uint16_t port, int index) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  ::inet_pton(AF_INET, kSwarmHost, &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const timeval patience{2, 0};  // a full backlog must not hold the swarm up for minutes
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof patience);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return -1;
  }
  if (index % 2 == 1) {
    tcp::FrameHeader header;
    header.type = tcp::FrameType::kControl;
    header.length = index % 4 == 1 ? transport::Endpoint::kMaxUntrustedControlBytes : 1u << 30;
    std::array<std::byte, tcp::FrameHeader::kBytes> bytes;
    header.encode(bytes);
    (void)!::write(fd, bytes.data(), bytes.size());
  }
  return fd;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t count = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++count;
  }
  return count;
}

struct Figures {
  long rss_before_kib = 0;
  long rss_peak_kib = 0;
  int fds_before = 0;
  int fds_peak = 0;
  long fd_limit = 0;
  double cpu_share = 0;  // of one core, over the swarm window
  int connected = 0;     // swarm connections the kernel took (accepted or in the backlog)
};

// Runs a 4-node chain whose last agent starts `delay` late, swarms the root's control port
// while it waits, and returns the root's result with what was measured. `wrapper` goes in
// front of the root's command line (e.g. prlimit).
ProcessResult run_with_swarm(std::vector<std::string> wrapper, std::chrono::seconds delay,
                             Figures& figures, LocalJob& job) {
  const auto rsh = job.dir / "slow-rsh";
  {
    std::ofstream script(rsh);
    script << "#!/bin/sh\nIFS= read -r secret\nprintf '%s\\n' \"$2\" > \""
           << job.dir.path().string() << "/agent-$1\"\n[ \"$1\" = 127.0.0.4 ] && sleep "
           << delay.count() << "\nprintf '%s\\n' \"$secret\" | exec /bin/sh -c \"$2\"\n";
  }
  std::filesystem::permissions(rsh, std::filesystem::perms::owner_all);
  job.rsh = rsh.string();
  const auto source = job.dir / "source.sif";
  write_random_file(source, 8u << 20, 31);
  std::vector<std::string> argv = job.command(source, {"--topology", "chain"});
  argv.insert(argv.begin(), wrapper.begin(), wrapper.end());
  Process root(argv);
  const pid_t pid = root.pid();  // prlimit execs the command: the same process

  // Ready: the control port is known and the two early agents listen (they joined or are
  // joining), so what the swarm costs is all that changes from here.
  std::uint16_t port = 0;
  const auto give_up = Clock::now() + 10s;
  for (; Clock::now() < give_up; std::this_thread::sleep_for(20ms)) {
    port = port ? port : control_port(job.dir / "agent-127.0.0.2");
    std::set<pid_t> agents;
    for (const ListeningPort& p : listening_ports_of_tree(pid)) {
      if (p.pid != pid)
        agents.insert(p.pid);
    }
    if (port != 0 && agents.size() >= 2)
      break;
  }
  EXPECT_NE(port, 0) << "no agent was started";
  std::this_thread::sleep_for(300ms);
  figures.rss_before_kib = resident_kib(pid);
  figures.fds_before = open_fds(pid);
  figures.fd_limit = fd_limit(pid);
  figures.rss_peak_kib = figures.rss_before_kib;
  figures.fds_peak = figures.fds_before;

  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done) {
      figures.rss_peak_kib = std::max(figures.rss_peak_kib, resident_kib(pid));
      figures.fds_peak = std::max(figures.fds_peak, open_fds(pid));
      std::this_thread::sleep_for(10ms);
    }
  });
  const double cpu_start = cpu_seconds(pid);
  const auto wall_start = Clock::now();
  std::vector<int> swarm;
  for (int i = 0; i < kSwarm && port != 0; ++i) {
    if (const int fd = swarm_connection(port, i); fd >= 0)
      swarm.push_back(fd);
  }
  std::this_thread::sleep_for(1500ms);  // held: the root sits with them
  const double cpu_used = cpu_seconds(pid) - cpu_start;
  const std::chrono::duration<double> wall = Clock::now() - wall_start;
  done = true;
  sampler.join();
  figures.cpu_share = cpu_used / wall.count();
  figures.connected = static_cast<int>(swarm.size());
  for (int fd : swarm)
    ::close(fd);

  ProcessResult result = root.wait(60s);
  EXPECT_EQ(result.exit_code, 0) << result.err.substr(
      result.err.size() > 6000 ? result.err.size() - 6000 : 0);
  job.expect_all_copies_of(source);
  std::cout << fmt::format(
                   "swarm: {} connections; root RSS {:.1f} MB before, {:.1f} MB peak (+{:.1f} "
                   "MB); fds {} before, {} peak, limit {}; CPU {:.1f} % of a core over {:.2f} s; "
                   "{} stderr lines ({} refusal lines, {} summaries, {} accept-pause lines)",
                   figures.connected, figures.rss_before_kib / 1024.0,
                   figures.rss_peak_kib / 1024.0,
                   (figures.rss_peak_kib - figures.rss_before_kib) / 1024.0, figures.fds_before,
                   figures.fds_peak, figures.fd_limit, 100 * figures.cpu_share, wall.count(),
                   count_of(result.err, "\n"), count_of(result.err, "refused control connection"),
                   count_of(result.err, "more control connection(s)"),
                   count_of(result.err, "cannot accept connections"))
            << std::endl;
  return result;
}

// The test itself holds the swarm: it needs ~kSwarm descriptors beyond the usual.
bool raise_own_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return false;
  limit.rlim_cur = std::max<rlim_t>(limit.rlim_cur, std::min<rlim_t>(limit.rlim_max, 4096));
  return ::setrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur >= kSwarm + 64;
}

TEST(Swarm, UnauthenticatedConnectionsCostTheRootLittleAndTheRunVerifies) {
  if (!raise_own_fd_limit())
    GTEST_SKIP() << "this process may not hold " << kSwarm << " connections";
  LocalJob job(4);
  Figures figures;
  const ProcessResult result = run_with_swarm({}, 4s, figures, job);
  EXPECT_GT(figures.connected, kSwarm * 9 / 10);
  EXPECT_LT(figures.rss_peak_kib - figures.rss_before_kib, 64 * 1024);
  EXPECT_TRUE(figures.fd_limit < 0 || figures.fds_peak < figures.fd_limit);
  EXPECT_LT(count_of(result.err, "\n"), 2000u);
  // One host's crowd is refused in a bounded number of warn lines, and summed up.
  EXPECT_LE(count_of(result.err, "refused control connection from 127.0.0.200:"), 40u);
  EXPECT_NE(result.err.find("more control connection(s)"), std::string::npos);
}

TEST(Swarm, ARootOutOfDescriptorsPausesItsListenerInsteadOfSpinning) {
  if (!raise_own_fd_limit())
    GTEST_SKIP() << "this process may not hold " << kSwarm << " connections";
  if (std::system("command -v prlimit > /dev/null") != 0)
    GTEST_SKIP() << "no prlimit (util-linux) to start the root under a descriptor limit";
  // Below what the root holds for the swarm (one host's share of unproven connections, 64)
  // plus its own: accept4 fails with EMFILE for as long as the swarm stays.
  LocalJob job(4);
  Figures figures;
  const ProcessResult result = run_with_swarm({"prlimit", "--nofile=64", "--"}, 4s, figures, job);
  EXPECT_EQ(figures.fd_limit, 64);  // the kernel holds the root to it: nothing to check there
  EXPECT_LT(figures.cpu_share, 0.30) << "the root spun";
  const std::size_t pauses = count_of(result.err, "cannot accept connections");
  EXPECT_GE(pauses, 1u) << "the swarm did not exhaust the root's descriptors";
  EXPECT_LE(pauses, 3u);
  EXPECT_LT(count_of(result.err, "\n"), 2000u);
}

}  // namespace
}  // namespace imgcast::test
