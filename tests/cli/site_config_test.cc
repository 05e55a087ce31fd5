// The site config file (cli/site_config.h), through the real binary and real files: a value
// from the file is used, a flag overrides it, the built-in default applies without either;
// --show-config names each setting's origin; a bad value, a file others may write, a missing
// explicit file and unknown keys behave as documented in docs/usage.md; the agent reads none.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace imgcast::test {
namespace {

namespace fs = std::filesystem;

class SiteConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    write_random_file(source_, 300'000);
    for (int rank = 0; rank < 2; ++rank)
      fs::create_directories(dir_ / ("node" + std::to_string(rank)));
  }

  // Writes the config file with `mode` and returns its path.
  std::string config(const std::string& text, fs::perms mode = fs::perms(0644)) {
    {
      std::ofstream out(config_path_, std::ios::trunc);
      out << text;
    }
    fs::permissions(config_path_, mode);
    return config_path_.string();
  }

  // imgcast replicate to two local nodes; `extra` after the subcommand's own arguments.
  ProcessResult replicate(const std::string& config_variable,
                          const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {IMGCAST_BINARY,
                                     "replicate",
                                     source_.string(),
                                     (dir_ / "node%r" / "copy").string(),
                                     "--hosts",
                                     "127.0.0.1,127.0.0.2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (std::find(extra.begin(), extra.end(), "--rsh") == extra.end())
      argv.insert(argv.end(), {"--rsh", "local"});
    // A fresh copy every run: an unchanged one would be kept as cached, mode and all.
    for (int rank = 0; rank < 2; ++rank)
      fs::remove(dir_ / ("node" + std::to_string(rank)) / "copy");
    return run(argv, std::chrono::seconds(60), {"IMGCAST_CONFIG=" + config_variable});
  }

  ProcessResult show(const std::string& config_variable, std::vector<std::string> args,
                     std::vector<std::string> env = {}) {
    args.insert(args.begin(), {IMGCAST_BINARY, "--show-config"});
    env.push_back("IMGCAST_CONFIG=" + config_variable);
    return run(args, std::chrono::seconds(30), env);
  }

  // The copies' permission bits; both nodes must agree.
  unsigned copy_mode() {
    struct stat first {}, second {};
    EXPECT_EQ(::stat((dir_ / "node0" / "copy").c_str(), &first), 0);
    EXPECT_EQ(::stat((dir_ / "node1" / "copy").c_str(), &second), 0);
    EXPECT_EQ(first.st_mode & 07777, second.st_mode & 07777);
    return first.st_mode & 07777;
  }

  TempDir dir_;
  fs::path source_ = dir_ / "app.sif";
  fs::path config_path_ = dir_ / "imgcast.conf";
};

// The stderr line that starts "imgcast: error:", checked to be the only error line.
std::string error_line(const ProcessResult& result) {
  const auto start = result.err.find("imgcast: error: ");
  EXPECT_NE(start, std::string::npos) << result.err;
  if (start == std::string::npos)
    return "";
  EXPECT_EQ(result.err.find("imgcast: error: ", start + 1), std::string::npos) << result.err;
  return result.err.substr(start, result.err.find('\n', start) - start);
}

TEST_F(SiteConfig, FileValueIsUsedFlagWinsDefaultOtherwise) {
  const std::string path = config("# site defaults\n[replicate]\nmode = \"0600\"\n");
  ProcessResult from_file = replicate(path);
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(copy_mode(), 0600u);

  ProcessResult from_flag = replicate(path, {"--mode", "0640"});
  ASSERT_EQ(from_flag.exit_code, 0) << from_flag.err;
  EXPECT_EQ(copy_mode(), 0640u);

  // IMGCAST_CONFIG= (empty): no config file at all, the built-in default.
  ProcessResult neither = replicate("");
  ASSERT_EQ(neither.exit_code, 0) << neither.err;
  EXPECT_EQ(copy_mode(), 0644u);
  EXPECT_TRUE(files_equal(source_, dir_ / "node1" / "copy"));
}

TEST_F(SiteConfig, ShowConfigNamesEveryOrigin) {
  const std::string path = config(
      "rdma-device = \"mlx5_9:1\"\n"
      "bind = any\n"
      "[replicate]\n"
      "transport = \"tcp\"\n"
      "stall-timeout = 90\n"
      "rsh = \"ssh -x\"\n");
  const ProcessResult result = show(path, {"replicate", "--stall-timeout", "45"},
                                    {"IMGCAST_RDMA_DEVICE=mlx5_0:1"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto has = [&](const std::string& setting, const std::string& origin) {
    for (std::size_t at = result.out.find(setting); at != std::string::npos;
         at = result.out.find(setting, at + 1)) {
      const std::string line = result.out.substr(at, result.out.find('\n', at) - at);
      if (line.find("# " + origin) != std::string::npos)
        return true;
    }
    return false;
  };
  EXPECT_NE(result.out.find("# config file: " + path + " (from IMGCAST_CONFIG)"),
            std::string::npos)
      << result.out;
  EXPECT_TRUE(has("transport = \"tcp\"", "config file " + path)) << result.out;
  EXPECT_TRUE(has("rsh = \"ssh -x\"", "config file " + path)) << result.out;
  EXPECT_TRUE(has("bind = \"any\"", "config file " + path)) << result.out;
  EXPECT_TRUE(has("stall-timeout = 45", "command line")) << result.out;
  EXPECT_TRUE(has("rdma-device = \"mlx5_0:1\"", "environment IMGCAST_RDMA_DEVICE")) << result.out;
  EXPECT_TRUE(has("connect-timeout = 30", "default")) << result.out;
  // Only the subcommand asked about.
  EXPECT_EQ(result.out.find("[hook]"), std::string::npos) << result.out;

  const ProcessResult none = show("", {});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_NE(none.out.find("config file: none (IMGCAST_CONFIG is empty)"), std::string::npos);
  for (const char* section : {"[replicate]", "[hook]", "[demo]"})
    EXPECT_NE(none.out.find(section), std::string::npos) << section;
  EXPECT_TRUE(none.out.find("transport = \"auto\"") != std::string::npos) << none.out;
}

TEST_F(SiteConfig, BadValueInTheFileIsRejectedLikeOnTheCommandLine) {
  for (const char* text : {"[replicate]\nlink-mbit = 0\n", "[replicate]\ntransport = pigeon\n",
                           "[replicate]\nconnect-timeout = -1\n", "[hook]\nmode = \"0x9\"\n"}) {
    const ProcessResult result = replicate(config(text));
    EXPECT_EQ(result.exit_code, 1) << text << result.err;
    const std::string line = error_line(result);
    EXPECT_NE(line.find("config file " + config_path_.string()), std::string::npos) << line;
    EXPECT_FALSE(fs::exists(dir_ / "node0" / "copy")) << text;
  }
  // The command line's value replaces the file's, so a bad value there is not in the way.
  const ProcessResult overridden = replicate(config("[replicate]\ntransport = pigeon\n"),
                                             {"--transport", "tcp"});
  EXPECT_EQ(overridden.exit_code, 0) << overridden.err;
}

TEST_F(SiteConfig, FileOthersMayWriteIsRefused) {
  const std::string path = config("[replicate]\nmode = \"0600\"\n", fs::perms(0664));
  const ProcessResult group_writable = replicate(path);
  EXPECT_EQ(group_writable.exit_code, 4) << group_writable.err;
  EXPECT_NE(error_line(group_writable).find("refusing the config file " + path),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "node0" / "copy"));

  // A symlink is refused too: what it points to could change under us.
  config("[replicate]\nmode = \"0600\"\n");
  const fs::path link = dir_ / "link.conf";
  fs::create_symlink(config_path_, link);
  EXPECT_EQ(show(link.string(), {}).exit_code, 4);

  if (::geteuid() == 0) {
    // Another (non-root) user's file, though no one else may write it.
    ASSERT_EQ(::chown(config_path_.c_str(), 65534, 65534), 0);
    const ProcessResult foreign = show(path, {});
    EXPECT_EQ(foreign.exit_code, 4) << foreign.out;
    EXPECT_NE(error_line(foreign).find("belongs to uid 65534"), std::string::npos);
  }
}

TEST_F(SiteConfig, MissingExplicitFileIsAnError) {
  const std::string missing = (dir_ / "no-such.conf").string();
  const ProcessResult result = replicate(missing);
  EXPECT_EQ(result.exit_code, 1);
  const std::string line = error_line(result);
  EXPECT_NE(line.find(missing), std::string::npos) << line;
  EXPECT_NE(line.find("IMGCAST_CONFIG"), std::string::npos) << line;
  // --help needs no config file.
  EXPECT_EQ(run({IMGCAST_BINARY, "--help"}, std::chrono::seconds(30),
                {"IMGCAST_CONFIG=" + missing})
                .exit_code,
            0);
}

TEST_F(SiteConfig, UnknownKeysWarnOnceEachAndTheRestApplies) {
  const std::string path = config(
      "transport = tcp\n"
      "[replicate]\n"
      "cache-ttl = 7d\n"
      "mode = \"0600\"\n"
      "[agent]\n"
      "data-port = 7000\n");
  const ProcessResult result = replicate(path);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(copy_mode(), 0600u);
  for (const std::string key : {"'replicate.cache-ttl'", "'agent.data-port'", "'transport'"}) {
    const auto at = result.err.find(key);
    ASSERT_NE(at, std::string::npos) << key << "\n" << result.err;
    const auto start = result.err.rfind('\n', at) + 1;
    const std::string line = result.err.substr(start, result.err.find('\n', at) - start);
    EXPECT_NE(line.find("warning: config file " + path), std::string::npos) << line;
    EXPECT_EQ(result.err.find(key, at + 1), std::string::npos) << "twice: " << key;
  }
}

// The agent takes its settings from the root: a config file that would be refused (others may
// write it) in the agents' environment changes nothing.
TEST_F(SiteConfig, AgentReadsNoConfigFile) {
  const std::string refused = config("bind = any\n", fs::perms(0666));
  const fs::path rsh = dir_ / "config-rsh";
  {
    std::ofstream out(rsh);
    out << "#!/bin/sh\nIMGCAST_CONFIG='" << refused << "' exec /bin/sh -c \"$2\"\n";
  }
  fs::permissions(rsh, fs::perms(0755));
  const ProcessResult result = replicate("", {"--rsh", rsh.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(files_equal(source_, dir_ / "node1" / "copy"));
  EXPECT_EQ(result.err.find("config file"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace imgcast::test
