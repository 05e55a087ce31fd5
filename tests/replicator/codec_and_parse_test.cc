#include <gtest/gtest.h>

#include <fstream>

#include "replicator/byte_codec.h"
#include "replicator/errors.h"
#include "replicator/parse.h"
#include "tests/support/process.h"

namespace imgcast::replicator {
namespace {

TEST(ByteCodec, RoundTripsEveryField) {
  ByteWriter w;
  w.u8(7)
      .u16(0xBEEF)
      .u32(0xDEADBEEF)
      .u64(0x0123456789ABCDEFULL)
      .str("host:1")
      .blob(std::vector<std::byte>{std::byte{1}, std::byte{2}});
  const auto bytes = w.take();
  ByteReader r(bytes);
  EXPECT_EQ(r.u8(), 7);
  EXPECT_EQ(r.u16(), 0xBEEF);
  EXPECT_EQ(r.u32(), 0xDEADBEEFu);
  EXPECT_EQ(r.u64(), 0x0123456789ABCDEFULL);
  EXPECT_EQ(r.str(100), "host:1");
  EXPECT_EQ(r.blob(100).size(), 2u);
  EXPECT_TRUE(r.done());
}

TEST(ByteCodec, TruncationAndBoundsFailStickily) {
  ByteWriter w;
  w.u32(5).str("hello");
  const auto bytes = w.take();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    ByteReader r(std::span<const std::byte>(bytes).first(n));
    (void)r.u32();
    (void)r.str(100);
    EXPECT_FALSE(r.ok()) << "cut at " << n;
  }
  ByteReader bounded(bytes);
  (void)bounded.u32();
  EXPECT_EQ(bounded.str(4), "");  // "hello" is over a 4-byte bound
  EXPECT_FALSE(bounded.ok());
  EXPECT_EQ(bounded.u8(), 0);  // sticky: later reads return zeros
}

TEST(Parse, Sizes) {
  EXPECT_EQ(parse_size("4096", "x"), 4096u);
  EXPECT_EQ(parse_size("4K", "x"), 4096u);
  EXPECT_EQ(parse_size("4k", "x"), 4096u);
  EXPECT_EQ(parse_size("4KB", "x"), 4096u);
  EXPECT_EQ(parse_size("256MiB", "x"), 256u << 20);
  EXPECT_EQ(parse_size("1G", "x"), 1u << 30);
  EXPECT_EQ(parse_size("2T", "x"), 2ULL << 40);
  EXPECT_EQ(parse_size(" 8M ", "x"), 8u << 20);
  for (const char* bad :
       {"", "-1", "4X", "1.5G", "M", "4MM", "99999999999999999999", "17179869184T"}) {
    try {
      (void)parse_size(bad, "--size");
      ADD_FAILURE() << bad;
    } catch (const InputError& error) {
      EXPECT_NE(std::string(error.what()).find("--size"), std::string::npos);
    }
  }
}

TEST(Parse, HostLists) {
  EXPECT_EQ(parse_host_list("a,b , c"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(parse_host_list("node001.cluster"), (std::vector<std::string>{"node001.cluster"}));
  for (const char* bad : {"", " ", "a,,b", "a,", ",a", "a;rm -rf /", "-oProxyCommand=x", "a b"}) {
    EXPECT_THROW(parse_host_list(bad), InputError) << bad;
  }
  try {
    (void)parse_host_list("a,b,a");
    ADD_FAILURE();
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("host a twice"), std::string::npos) << error.what();
  }
}

TEST(Parse, Hostfiles) {
  test::TempDir dir;
  std::ofstream(dir / "hosts") << "# the job\nnode1 slots=4\n\n  node2\t# comment\nnode3\n";
  EXPECT_EQ(read_hostfile(dir / "hosts"), (std::vector<std::string>{"node1", "node2", "node3"}));
  std::ofstream(dir / "dup") << "n1\nn1\n";
  EXPECT_THROW(read_hostfile(dir / "dup"), InputError);
  std::ofstream(dir / "empty") << "# nothing\n";
  EXPECT_THROW(read_hostfile(dir / "empty"), InputError);
  EXPECT_THROW(read_hostfile(dir / "missing"), InputError);
}

}  // namespace
}  // namespace imgcast::replicator
