// Stands in for imgcast in the SPANK privilege test: the plugin runs it as it would run
// `imgcast -q hook SRC DST ...`, and it writes who it runs as to DST (argv[4]): the Uid, Gid,
// Groups and Cap* lines of /proc/self/status, and the descriptors it inherited.
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 5)
    return 1;
  // First, before this program opens anything itself.
  std::string fds = "fds:";
  for (int fd = 0; fd < 1024; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1)
      fds += " " + std::to_string(fd);
  }
  std::ifstream status("/proc/self/status");
  std::ofstream report(argv[4]);
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Uid:", 0) == 0 || line.rfind("Gid:", 0) == 0 ||
        line.rfind("Groups:", 0) == 0 || line.rfind("Cap", 0) == 0 ||
        line.rfind("NoNewPrivs:", 0) == 0)
      report << line << "\n";
  }
  report << fds << "\n";
  return report ? 0 : 1;
}
