#include "tests/support/listening_ports.h"
#include "tests/support/proc_stats.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace imgcast::test {

namespace {

// socket inode -> where it listens, for the sockets in LISTEN state (st 0A) of
// /proc/net/tcp{,6}.
std::map<unsigned long, ListeningPort> listening_inodes() {
  std::map<unsigned long, ListeningPort> out;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout;
      unsigned long inode = 0;
      if (!(fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
            timeout >> inode) ||
          state != "0A") {
        continue;
      }
      const auto colon = local.rfind(':');
      ListeningPort& entry = out[inode];
      entry.port = static_cast<std::uint16_t>(std::stoul(local.substr(colon + 1), nullptr, 16));
      if (colon == 8) {  // IPv4: the address as the kernel's u32, in hex
        in_addr address{};
        address.s_addr = static_cast<in_addr_t>(std::stoul(local.substr(0, 8), nullptr, 16));
        char text[INET_ADDRSTRLEN] = "";
        if (address.s_addr != 0 && ::inet_ntop(AF_INET, &address, text, sizeof text) != nullptr)
          entry.host = text;
      }
    }
  }
  return out;
}

std::vector<pid_t> all_pids() {
  std::vector<pid_t> pids;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) {
    return pids;
  }
  while (const dirent* entry = ::readdir(proc)) {
    const std::string name = entry->d_name;
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
      pids.push_back(static_cast<pid_t>(std::stol(name)));
    }
  }
  ::closedir(proc);
  return pids;
}

pid_t parent_of(pid_t pid) {
  const std::string stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) {
    return -1;
  }
  std::istringstream rest(stat.substr(close + 1));
  std::string state;
  pid_t ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

}  // namespace

std::vector<ListeningPort> listening_ports_of_tree(pid_t root) {
  std::set<pid_t> tree{root};
  const std::vector<pid_t> pids = all_pids();
  for (bool grew = true; grew;) {
    grew = false;
    for (pid_t pid : pids) {
      if (!tree.count(pid) && tree.count(parent_of(pid))) {
        tree.insert(pid);
        grew = true;
      }
    }
  }
  const auto inodes = listening_inodes();
  std::vector<ListeningPort> out;
  for (pid_t pid : tree) {
    const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* dir = ::opendir(fd_dir.c_str());
    if (dir == nullptr) {
      continue;  // gone meanwhile
    }
    while (const dirent* entry = ::readdir(dir)) {
      char target[64] = {};
      const std::string path = fd_dir + "/" + entry->d_name;
      const ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
      unsigned long inode = 0;
      if (n > 0 && std::sscanf(target, "socket:[%lu]", &inode) == 1) {
        if (const auto it = inodes.find(inode); it != inodes.end()) {
          ListeningPort found = it->second;
          found.pid = pid;
          out.push_back(found);
        }
      }
    }
    ::closedir(dir);
  }
  return out;
}

}  // namespace imgcast::test
