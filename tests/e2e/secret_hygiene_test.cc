// An agent started the way srun and mpirun start it, with the job secret in its environment,
// run as an ordinary user (nobody): while it waits for its root, the secret must not be in
// /proc/PID/environ (unsetenv alone leaves the initial block intact), it may not dump core, and
// it is not dumpable (the kernel then hands its /proc files to root, so the user's other
// processes cannot read its memory or attach to it).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/e2e/harness.h"
#include "tests/support/proc_stats.h"

namespace imgcast::test {
namespace {

using namespace std::chrono_literals;

std::string read_proc(pid_t pid, const char* what) {
  return read_proc_file("/proc/" + std::to_string(pid) + "/" + what);
}

TEST(SecretHygiene, AnAgentsSecretIsNotInItsEnvironBlockAndItDumpsNoCore) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root, to run the agent as nobody";
  // A "root" that accepts and never answers: the agent holds the secret and waits.
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  const std::string control = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));

  const std::string key(64, 'b');
  const std::string secret = "IMGCAST1 " + std::string(32, 'a') + " " + key + " tcp";
  Process agent({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", IMGCAST_BINARY,
                 "agent", "--control", control, "--rank", "1", "--host", "127.0.0.1",
                 "--connect-timeout", "10"},
                {"IMGCAST_JOB_SECRET=" + secret});
  pollfd ready{listener, POLLIN, 0};
  ASSERT_EQ(::poll(&ready, 1, 10000), 1) << agent.err_so_far();
  const int connection = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(connection, 0);
  // Connected: it has taken the secret and holds it now.

  const std::string environ = read_proc(agent.pid(), "environ");
  EXPECT_NE(environ.find("IMGCAST_JOB_SECRET="), std::string::npos)
      << "the block itself stays (only its value is overwritten)";
  EXPECT_EQ(environ.find(key), std::string::npos) << "the key is readable in /proc/PID/environ";
  EXPECT_EQ(environ.find("IMGCAST1"), std::string::npos);
  EXPECT_NE(read_proc(agent.pid(), "status").find("Uid:\t65534\t65534\t65534\t65534"),
            std::string::npos);
  const std::string limits = read_proc(agent.pid(), "limits");
  const auto core = limits.find("Max core file size");
  ASSERT_NE(core, std::string::npos);
  std::istringstream core_line(limits.substr(core + sizeof "Max core file size" - 1));
  std::string soft;
  core_line >> soft;
  EXPECT_EQ(soft, "0") << limits;
  // Not dumpable: its /proc entries belong to root, not to the user it runs as.
  struct stat st {};
  ASSERT_EQ(::stat(("/proc/" + std::to_string(agent.pid()) + "/environ").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);

  ::close(connection);
  ::close(listener);
  const ProcessResult result = agent.wait(30s);
  EXPECT_NE(result.exit_code, 0);  // its root hung up before the handshake
}

}  // namespace
}  // namespace imgcast::test
