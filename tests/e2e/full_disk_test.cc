// A full destination on one host: it fails fast, before data moves (fallocate), with a clear
// message; the other hosts finish; no file under DST on the full host. And the job key from
// IMGCAST_KEY_FILE: used when private, refused when others could read it.
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

// A run of `job` whose host `full` has a node-local directory too small for the image.
struct FullHostRun {
  std::string cannot_mount;  // why no small tmpfs could be mounted; empty when the run happened
  ProcessResult result;
  std::vector<std::string> left_on_full_host;  // what the full host kept under its directory
};

// Replicates a 4 MiB image (from `seed`) with host `full`'s node-local directory a 1 MiB tmpfs:
// the image cannot be reserved there. The tmpfs is gone again when this returns, so what the
// host left behind is listed while it is mounted.
FullHostRun run_with_full_host(const LocalJob& job, const std::filesystem::path& source, int full,
                               std::uint64_t seed) {
  write_random_file(source, 4u << 20, seed);
  FullHostRun outcome;
  if (::mount("tmpfs", job.node_dir(full).c_str(), "tmpfs", 0, "size=1m") != 0) {
    outcome.cannot_mount = std::strerror(errno);
    return outcome;
  }
  outcome.result = run(job.command(source));
  outcome.left_on_full_host = list_dir(job.node_dir(full));
  ::umount(job.node_dir(full).c_str());
  return outcome;
}

TEST(FullDisk, TheFullHostFailsAloneBeforeDataMoves) {
  LocalJob job(4);
  const auto source = job.dir / "source.sif";
  const FullHostRun full = run_with_full_host(job, source, 2, 61);
  if (!full.cannot_mount.empty()) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << full.cannot_mount;
  }
  EXPECT_EQ(full.result.exit_code, 3) << full.result.err;
  EXPECT_NE(full.result.err.find("127.0.0.3"), std::string::npos) << full.result.err;
  EXPECT_NE(full.result.err.find("no space for 4194304 bytes"), std::string::npos)
      << full.result.err;
  EXPECT_TRUE(full.left_on_full_host.empty());
  for (int rank : {0, 1, 3})
    EXPECT_TRUE(files_equal(source, job.copy(rank))) << "rank " << rank;
}

TEST(FullDisk, AFullRootFailsTheJobAndEveryHostIsCleanedUp) {
  // The root reserves its copy while the agents reserve theirs: when the root's cannot be, the
  // job fails (the source's own copy is everyone's source), and the agents remove theirs.
  LocalJob job(3);
  const auto source = job.dir / "source.sif";
  const FullHostRun full = run_with_full_host(job, source, 0, 64);
  if (!full.cannot_mount.empty()) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << full.cannot_mount;
  }
  EXPECT_EQ(full.result.exit_code, 2) << full.result.err;
  EXPECT_NE(full.result.err.find("127.0.0.1 (root): no space for 4194304 bytes"), std::string::npos)
      << full.result.err;
  EXPECT_TRUE(full.left_on_full_host.empty());
  for (int rank : {1, 2})
    EXPECT_TRUE(list_dir(job.node_dir(rank)).empty()) << "rank " << rank;
}

TEST(KeyFile, APrivateKeyFileIsUsedAndAReadableOneRefused) {
  LocalJob job(2);
  const auto source = job.dir / "source.sif";
  write_random_file(source, 100000, 62);
  const auto key = job.dir / "job.key";
  { std::ofstream(key) << std::string(64, 'a') << "\n"; }
  ::chmod(key.c_str(), 0600);
  const ProcessResult ok =
      run(job.command(source), std::chrono::seconds(60), {"IMGCAST_KEY_FILE=" + key.string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  job.expect_all_copies_of(source);

  ::chmod(key.c_str(), 0644);
  const ProcessResult open =
      run(job.command(source), std::chrono::seconds(60), {"IMGCAST_KEY_FILE=" + key.string()});
  EXPECT_EQ(open.exit_code, 4) << open.err;
  EXPECT_NE(open.err.find("mode 0600"), std::string::npos) << open.err;

  ::chmod(key.c_str(), 0600);
  { std::ofstream(key) << "not a key\n"; }
  const ProcessResult bad =
      run(job.command(source), std::chrono::seconds(60), {"IMGCAST_KEY_FILE=" + key.string()});
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_NE(bad.err.find("64 hex digits"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace imgcast::test

namespace imgcast::test {
namespace {

TEST(Symlinks, ADestinationDirectoryReachedThroughASymlinkIsRefusedUnlessAllowed) {
  LocalJob job(2);
  const auto source = job.dir / "source.sif";
  write_random_file(source, 100000, 63);
  // node1/ is a symlink to elsewhere/: writing there would leave the directory the user named.
  const auto elsewhere = job.dir / "elsewhere";
  std::filesystem::create_directories(elsewhere);
  std::filesystem::remove(job.node_dir(1));
  std::filesystem::create_directory_symlink(elsewhere, job.node_dir(1));
  const ProcessResult refused = run(job.command(source));
  EXPECT_EQ(refused.exit_code, 3) << refused.err;  // that host alone fails, for security
  EXPECT_NE(refused.err.find("resolves through a symlink"), std::string::npos) << refused.err;
  EXPECT_TRUE(list_dir(elsewhere).empty());
  EXPECT_TRUE(files_equal(source, job.copy(0)));

  const ProcessResult allowed = run(job.command(source, {"--follow-symlinks"}));
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
  EXPECT_TRUE(files_equal(source, elsewhere / "image.sif"));

  // The root's own destination: refused before anything starts.
  LocalJob root_job(1);
  std::filesystem::remove(root_job.node_dir(0));
  std::filesystem::create_directory_symlink(elsewhere, root_job.node_dir(0));
  const ProcessResult root = run(root_job.command(source));
  EXPECT_EQ(root.exit_code, 4) << root.err;
}

}  // namespace
}  // namespace imgcast::test
