// Shared pieces of the end-to-end tests: a job of N local "nodes" (loopback addresses
// 127.0.0.1..N, one destination directory each) driven through the real imgcast binary.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace imgcast::test {

// Whether `dir` holds an imgcast staging (temporary) file.
inline bool has_staging_file(const std::filesystem::path& dir) {
  for (const auto& name : list_dir(dir)) {
    if (name.find(".imgcast-") != std::string::npos)
      return true;
  }
  return false;
}

inline std::string host_list(int nodes) {
  std::string hosts;
  for (int rank = 0; rank < nodes; ++rank) {
    hosts += fmt::format("{}127.0.0.{}", rank ? "," : "", rank + 1);
  }
  return hosts;
}

struct LocalJob {
  explicit LocalJob(int nodes) : nodes(nodes) {
    for (int rank = 0; rank < nodes; ++rank) {
      std::filesystem::create_directories(node_dir(rank));
    }
  }
  std::filesystem::path node_dir(int rank) const { return dir / fmt::format("node{}", rank); }
  std::filesystem::path copy(int rank) const { return node_dir(rank) / "image.sif"; }
  std::string destination() const { return (dir / "node%r" / "image.sif").string(); }

  std::vector<std::string> command(const std::filesystem::path& source,
                                   std::vector<std::string> extra = {}) const {
    std::vector<std::string> argv = {IMGCAST_BINARY,
                                     "--log-level",
                                     log_level,
                                     "replicate",
                                     source.string(),
                                     destination(),
                                     "--hosts",
                                     hosts.empty() ? host_list(nodes) : hosts,
                                     "--rsh",
                                     rsh,
                                     "--connect-timeout",
                                     connect_timeout,
                                     "--stall-timeout",
                                     "20"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  // Every node holds exactly its verified copy and nothing else (no temporary file left).
  void expect_all_copies_of(const std::filesystem::path& source) const {
    for (int rank = 0; rank < nodes; ++rank) {
      EXPECT_TRUE(files_equal(source, copy(rank))) << "rank " << rank;
      EXPECT_EQ(list_dir(node_dir(rank)), std::vector<std::string>{"image.sif"}) << "rank " << rank;
    }
  }

  int nodes;
  std::string hosts;  // empty: 127.0.0.1..N
  std::string rsh = "local";
  std::string connect_timeout = "20";
  std::string log_level = "info";
  TempDir dir;
};

}  // namespace imgcast::test
