// Stands in for imgcast in the SPANK privilege test: the plugin runs it as it would run
// `imgcast -q hook SRC... DST ...`, and it writes who it runs as to DST (the word before
// --rank): the Uid, Gid, Groups and Cap* lines of /proc/self/status, the descriptors it
// inherited, and its SRC... DST words ("paths: |SRC|...|DST|").
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <string>

int main(int argc, char** argv) {
  int rank_at = 4;
  while (rank_at < argc && std::string(argv[rank_at]) != "--rank")
    ++rank_at;
  if (rank_at == argc)
    return 1;
  // First, before this program opens anything itself.
  std::string fds = "fds:";
  for (int fd = 0; fd < 1024; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1)
      fds += " " + std::to_string(fd);
  }
  std::ifstream status("/proc/self/status");
  std::ofstream report(argv[rank_at - 1]);
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Uid:", 0) == 0 || line.rfind("Gid:", 0) == 0 ||
        line.rfind("Groups:", 0) == 0 || line.rfind("Cap", 0) == 0 ||
        line.rfind("NoNewPrivs:", 0) == 0)
      report << line << "\n";
  }
  report << fds << "\n";
  report << "paths: |";
  for (int i = 3; i < rank_at; ++i)
    report << argv[i] << "|";
  report << "\n";
  return report ? 0 : 1;
}
