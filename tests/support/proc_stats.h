// Test support: what the kernel says a running process costs, read from /proc/PID: resident
// memory, open file descriptors and their limit, CPU time. For tests that check a node stays
// bounded under hostile load (tests/e2e/swarm_test.cc).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace imgcast::test {

// The whole of a file under /proc/PID ("" if the process is gone, even mid-read: an ifstream
// would throw there, since libstdc++'s filebuf throws when read(2) fails with ESRCH).
std::string read_proc_file(const std::string& path);
// VmRSS in KiB; -1 if the process is gone.
long resident_kib(pid_t pid);
// Entries of /proc/PID/fd; -1 if the process is gone.
int open_fds(pid_t pid);
// The soft "Max open files" of /proc/PID/limits; -1 if unknown or unlimited.
long fd_limit(pid_t pid);
// utime + stime of /proc/PID/stat, in seconds; -1 if the process is gone.
double cpu_seconds(pid_t pid);

}  // namespace imgcast::test
