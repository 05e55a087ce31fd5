// SmallMount: a tmpfs of a chosen size mounted for one test (we run as root in CI), unmounted on
// destruction. Where mounting is not allowed, mounted() is false and the test skips.
#pragma once

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace imgcast::replicator {

class SmallMount {
 public:
  SmallMount(const std::filesystem::path& where, const char* options) : where_(where) {
    std::filesystem::create_directories(where);
    mounted_ = ::mount("tmpfs", where.c_str(), "tmpfs", 0, options) == 0;
    error_ = errno;
  }
  ~SmallMount() {
    if (mounted_)
      ::umount2(where_.c_str(), MNT_DETACH);
  }
  SmallMount(const SmallMount&) = delete;
  SmallMount& operator=(const SmallMount&) = delete;
  bool mounted() const { return mounted_; }
  std::string error() const { return std::strerror(error_); }

 private:
  std::filesystem::path where_;
  bool mounted_ = false;
  int error_ = 0;
};

}  // namespace imgcast::replicator
