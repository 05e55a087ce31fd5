// Parsers for what users type: sizes, host lists and hostfiles, good and bad (table-driven).
#include "cli/parse.h"

#include <gtest/gtest.h>

#include <fstream>

#include "replicator/errors.h"
#include "tests/support/process.h"

namespace imgcast::cli {
using replicator::InputError;
namespace {

// The InputError's message, or "" (and a test failure) when nothing was thrown.
template <typename F>
std::string input_error_of(F&& f) {
  try {
    f();
  } catch (const InputError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no InputError";
  return "";
}

TEST(Parse, GoodSizes) {
  const std::vector<std::pair<const char*, std::uint64_t>> cases{
      {"0", 0},
      {"4096", 4096},
      {"4K", 4096},
      {"4k", 4096},
      {"4KB", 4096},
      {"4kb", 4096},
      {"4KiB", 4096},
      {"4kib", 4096},
      {"4M", 4u << 20},
      {"256MiB", 256u << 20},
      {"1G", 1u << 30},
      {"1g", 1u << 30},
      {"1GB", 1u << 30},
      {"2T", 2ULL << 40},
      {"100B", 100},
      {"100b", 100},
      {" 8M ", 8u << 20},
      {"007", 7},
      {"18446744073709551615", ~0ULL},
      {"16777215T", 16777215ULL << 40},
  };
  for (const auto& [text, bytes] : cases) {
    EXPECT_EQ(parse_size(text, "--chunk-size"), bytes) << text;
  }
}

TEST(Parse, BadSizes) {
  for (const char* bad : {"",
                          " ",
                          "-1",
                          "+1",
                          "4X",
                          "1.5G",
                          "1,5G",
                          "M",
                          "K4",
                          "4MM",
                          "4 M",
                          "4iB",
                          "4MIBB",
                          "4M B",
                          "0x10",
                          "1e3",
                          "18446744073709551616",
                          "99999999999999999999",
                          "16777216T",
                          "17179869184G",
                          "4M\n5"}) {
    const std::string what = input_error_of([&] { (void)parse_size(bad, "--chunk-size"); });
    EXPECT_NE(what.find("--chunk-size '" + std::string(bad) + "' is not a size"), std::string::npos)
        << what;
    EXPECT_NE(what.find("K, M, G or T suffix"), std::string::npos) << what;
  }
}

TEST(Parse, GoodDurations) {
  using std::chrono::seconds;
  const std::vector<std::pair<const char*, seconds>> cases{
      {"1s", seconds(1)},          {"90s", seconds(90)},         {"30m", seconds(1800)},
      {"30M", seconds(1800)},      {"12h", seconds(12 * 3600)},  {"7d", seconds(7 * 86400)},
      {"2w", seconds(14 * 86400)}, {" 3h ", seconds(3 * 3600)},  {"0012h", seconds(12 * 3600)},
      {"36500d", seconds(36500LL * 86400)},
  };
  for (const auto& [text, value] : cases) {
    EXPECT_EQ(parse_duration(text, "--older-than"), value) << text;
  }
}

TEST(Parse, BadDurations) {
  for (const char* bad : {"", " ", "30", "0d", "0s", "-1d", "+1d", "1.5h", "1 h", "h", "1hh",
                          "1y", "1ms", "7days", "1e3s", "99999999999999d", "36600w", "1d\n5"}) {
    const std::string what = input_error_of([&] { (void)parse_duration(bad, "--older-than"); });
    EXPECT_NE(what.find("--older-than '" + std::string(bad) + "' is not a duration"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("s, m, h, d or w"), std::string::npos) << what;
  }
}

TEST(Parse, HostLists) {
  const std::vector<std::pair<const char*, std::vector<std::string>>> cases{
      {"a", {"a"}},
      {"a,b , c", {"a", "b", "c"}},
      {" node001.cluster ", {"node001.cluster"}},
      {"n-1,n_2,10.0.0.3,fe80::1", {"n-1", "n_2", "10.0.0.3", "fe80::1"}},
  };
  for (const auto& [text, hosts] : cases) {
    EXPECT_EQ(parse_host_list(text), hosts) << text;
  }
  for (const char* bad : {"", " ", "a,,b", "a,", ",a", "a, ,b", "a;rm -rf /", "$(id)", "a`b`",
                          "-oProxyCommand=x", "a b", "a/b", "a\nb"}) {
    const std::string what = input_error_of([&] { (void)parse_host_list(bad); });
    EXPECT_NE(what.find("--hosts"), std::string::npos) << what;
  }
  EXPECT_NE(input_error_of([] { (void)parse_host_list("a,,b"); }).find("empty entry"),
            std::string::npos);
  EXPECT_NE(input_error_of([] { (void)parse_host_list("a;b"); }).find("'a;b'"), std::string::npos);
}

TEST(Parse, DuplicateHostsAreNamed) {
  EXPECT_NE(input_error_of([] { (void)parse_host_list("a,b,a"); }).find("host a twice"),
            std::string::npos);
  EXPECT_NE(input_error_of([] { (void)parse_host_list("n1, n2 ,n2"); }).find("host n2 twice"),
            std::string::npos);
}

TEST(Parse, Hostfiles) {
  test::TempDir dir;
  std::ofstream(dir / "hosts") << "# the job\nnode1 slots=4\n\n  node2\t# comment\nnode3\n"
                               << "node4 slots=2 max_slots=8\n   \n#node5\nnode6#trailing\n";
  EXPECT_EQ(read_hostfile(dir / "hosts"),
            (std::vector<std::string>{"node1", "node2", "node3", "node4", "node6"}));
  std::ofstream(dir / "no-newline") << "a\nb";
  EXPECT_EQ(read_hostfile(dir / "no-newline"), (std::vector<std::string>{"a", "b"}));
  std::ofstream(dir / "crlf") << "a\r\nb\r\n";
  EXPECT_EQ(read_hostfile(dir / "crlf"), (std::vector<std::string>{"a", "b"}));

  std::ofstream(dir / "dup") << "n1 slots=1\nn2\nn1 slots=2\n";
  const std::string dup = input_error_of([&] { (void)read_hostfile(dir / "dup"); });
  EXPECT_NE(dup.find("host n1 twice"), std::string::npos) << dup;
  EXPECT_NE(dup.find((dir / "dup").string()), std::string::npos) << dup;

  std::ofstream(dir / "empty") << "# nothing\n\n";
  EXPECT_NE(input_error_of([&] { (void)read_hostfile(dir / "empty"); }).find("names no hosts"),
            std::string::npos);
  std::ofstream(dir / "bad") << "good\nevil;reboot\n";
  EXPECT_NE(input_error_of([&] { (void)read_hostfile(dir / "bad"); }).find("'evil;reboot'"),
            std::string::npos);
  EXPECT_NE(input_error_of([&] { (void)read_hostfile(dir / "missing"); }).find("check the path"),
            std::string::npos);
  EXPECT_NE(input_error_of([&] { (void)read_hostfile(dir.path()); }).find("is a directory"),
            std::string::npos);
}

}  // namespace
}  // namespace imgcast::cli
