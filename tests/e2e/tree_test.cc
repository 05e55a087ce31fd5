// End-to-end: directory trees (and several sources) replicated by real imgcast processes to
// local "nodes" on loopback, each copy compared with the source entry by entry: type, mode,
// content, symlink target and which names are hardlinks of each other.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "tests/e2e/harness.h"

namespace imgcast::test {
namespace {

namespace fs = std::filesystem;

// Everything under `top`, never following a symlink: relative path -> what it is. A file's
// hardlink identity is its group: the first path (in sorted order) with its inode.
std::map<std::string, std::string> describe(const fs::path& top) {
  std::map<std::string, std::string> out;
  std::map<std::pair<dev_t, ino_t>, std::string> first_name;
  std::vector<fs::path> paths;
  for (auto it = fs::recursive_directory_iterator(top); it != fs::recursive_directory_iterator();
       ++it) {
    paths.push_back(it->path());
  }
  std::sort(paths.begin(), paths.end());
  for (const fs::path& path : paths) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    const std::string rel = path.lexically_relative(top).string();  // never resolved
    std::string what = fmt::format("mode {:o} ", st.st_mode & 07777);
    if (S_ISDIR(st.st_mode)) {
      what += "dir";
    } else if (S_ISLNK(st.st_mode)) {
      what += "link -> " + fs::read_symlink(path).string();
    } else if (S_ISREG(st.st_mode)) {
      std::ifstream in(path, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), {});
      const auto [at, fresh] = first_name.emplace(std::pair{st.st_dev, st.st_ino}, rel);
      what += fmt::format("file {} bytes, hash {}, group {}", bytes.size(),
                          std::hash<std::string>{}(bytes), at->second);
    } else {
      what += "special";
    }
    out[rel] = what;
  }
  return out;
}

void expect_same_tree(const fs::path& source, const fs::path& copy) {
  ASSERT_TRUE(fs::is_directory(fs::symlink_status(copy))) << copy;
  const auto want = describe(source);
  const auto got = describe(copy);
  EXPECT_EQ(want.size(), got.size()) << copy;
  for (const auto& [path, what] : want) {
    const auto it = got.find(path);
    if (it == got.end()) {
      ADD_FAILURE() << copy << ": " << path << " missing";
    } else if (it->second != what) {
      ADD_FAILURE() << copy << ": " << path << " is " << it->second << ", source " << what;
    }
  }
  struct stat a {}, b {};
  ASSERT_EQ(::lstat(source.c_str(), &a), 0);
  ASSERT_EQ(::lstat(copy.c_str(), &b), 0);
  EXPECT_EQ(a.st_mode & 07777, b.st_mode & 07777) << "top of " << copy;
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// ~3,000 entries like an environment: small files of 0-12 KiB, a few MiB-sized ones, empty
// directories, relative, absolute and dangling symlinks, hardlinks, odd names, odd modes.
void make_big_tree(const fs::path& top) {
  std::mt19937 random(22);
  fs::create_directories(top);
  int entries = 0;
  for (int d = 0; d < 40; ++d) {
    const fs::path dir = top / fmt::format("pkg{:02}", d) / "lib";
    fs::create_directories(dir);
    entries += 2;
    for (int f = 0; f < 60; ++f) {
      std::string bytes(random() % (12 * 1024 + 1), '\0');
      for (auto& c : bytes) c = static_cast<char>(random());
      write_file(dir / fmt::format("mod{:03}.py", f), bytes);
      ++entries;
    }
    fs::create_directory(top / fmt::format("pkg{:02}", d) / "empty");
    fs::create_symlink("lib/mod000.py", top / fmt::format("pkg{:02}", d) / "rel-link");
    fs::create_symlink("/etc/hostname", top / fmt::format("pkg{:02}", d) / "abs-link");
    fs::create_symlink("does/not/exist", top / fmt::format("pkg{:02}", d) / "dangling");
    fs::create_hard_link(dir / "mod001.py", top / fmt::format("pkg{:02}", d) / "hard");
    entries += 5;
  }
  for (int f = 0; f < 3; ++f) {
    write_random_file(top / fmt::format("libbig{}.so", f), (std::uint64_t{f} + 1) << 20, f);
  }
  for (int f = 0; entries < 3000; ++f, ++entries) {
    write_file(top / "pkg00" / "lib" / fmt::format("x{}", f), std::to_string(f));
  }
  write_file(top / " sp ace\ttab\xc3\xa9", "odd");
  write_file(top / "-dash", "");
  write_file(top / "exec.sh", "#!/bin/sh\n");
  fs::permissions(top / "exec.sh", fs::perms(0750));
  fs::permissions(top / "pkg01" / "lib", fs::perms(0555));  // read-only directory
}

std::vector<std::string> tree_command(const LocalJob& job, std::vector<std::string> paths,
                                      const std::string& dst_name,
                                      std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {IMGCAST_BINARY, "--log-level", "warn", "replicate"};
  argv.insert(argv.end(), paths.begin(), paths.end());
  argv.push_back((job.dir / "node%r" / dst_name).string());
  for (const std::string& more : {std::string("--hosts"), host_list(job.nodes),
                                  std::string("--rsh"), std::string("local"),
                                  std::string("--connect-timeout"), std::string("20")}) {
    argv.push_back(more);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// Every node holds DST and nothing else: no staging file or directory is left.
void expect_only(const LocalJob& job, const std::string& name) {
  for (int rank = 0; rank < job.nodes; ++rank) {
    EXPECT_EQ(list_dir(job.node_dir(rank)), std::vector<std::string>{name}) << "rank " << rank;
  }
}

TEST(Tree, AnEmptyDirectoryBecomesAnEmptyDirectoryOnEveryNode) {
  LocalJob job(3);
  const fs::path source = job.dir / "empty";
  fs::create_directory(source);
  fs::permissions(source, fs::perms(0710));
  const ProcessResult result = run(tree_command(job, {source.string()}, "env"));
  ASSERT_EQ(result.exit_code, 0) << result.err << result.out;
  for (int rank = 0; rank < job.nodes; ++rank) expect_same_tree(source, job.node_dir(rank) / "env");
  expect_only(job, "env");
  EXPECT_NE(result.out.find("tree: 0 files, 0 directories"), std::string::npos) << result.out;
}

TEST(Tree, OneFileInADirectory) {
  LocalJob job(3);
  const fs::path source = job.dir / "one";
  fs::create_directory(source);
  write_random_file(source / "weights.bin", 100'000, 5);
  const ProcessResult result = run(tree_command(job, {source.string()}, "model"));
  ASSERT_EQ(result.exit_code, 0) << result.err << result.out;
  for (int rank = 0; rank < job.nodes; ++rank) {
    expect_same_tree(source, job.node_dir(rank) / "model");
  }
  expect_only(job, "model");
}

TEST(Tree, ThreeThousandEntriesReachFourNodesIntactAndTheJsonCountsThem) {
  LocalJob job(4);
  const fs::path source = job.dir / "env";
  make_big_tree(source);
  const ProcessResult result =
      run(tree_command(job, {source.string()}, "env", {"--chunk-size", "256K", "--json"}));
  ASSERT_EQ(result.exit_code, 0) << result.err << result.out;
  for (int rank = 0; rank < job.nodes; ++rank) expect_same_tree(source, job.node_dir(rank) / "env");
  fs::permissions(source / "pkg01" / "lib", fs::perms(0755));  // so TempDir can remove it
  expect_only(job, "env");
  const auto report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["totals"]["verified"], 4);
  EXPECT_EQ(report["tree"]["symlinks"], 120);
  EXPECT_EQ(report["tree"]["hardlinks"], 40);
  EXPECT_EQ(report["tree"]["directories"], 120);
  const std::uint64_t entries = report["tree"]["files"].get<std::uint64_t>() + 120 + 120 + 40;
  EXPECT_GE(entries, 3000u);
  for (int rank = 0; rank < job.nodes; ++rank) {
    fs::permissions(job.node_dir(rank) / "env" / "pkg01" / "lib", fs::perms(0755));
  }
}

TEST(Tree, SeveralSourcesLandInOneDirectoryByTheirNames) {
  LocalJob job(3);
  const fs::path app = job.dir / "app.sif";
  write_random_file(app, 300'000, 1);
  fs::create_directories(job.dir / "data" / "deep");
  write_file(job.dir / "data" / "deep" / "x.csv", "1,2,3\n");
  fs::create_directories(job.dir / "env" / "bin");
  fs::create_symlink("../lib/python", job.dir / "env" / "bin" / "python");
  const ProcessResult result = run(tree_command(
      job, {app.string(), (job.dir / "data").string(), (job.dir / "env").string() + "/"}, "job"));
  ASSERT_EQ(result.exit_code, 0) << result.err << result.out;
  for (int rank = 0; rank < job.nodes; ++rank) {
    const fs::path dst = job.node_dir(rank) / "job";
    EXPECT_EQ(list_dir(dst), (std::vector<std::string>{"app.sif", "data", "env"}));
    EXPECT_TRUE(files_equal(app, dst / "app.sif")) << rank;
    expect_same_tree(job.dir / "data", dst / "data");
    expect_same_tree(job.dir / "env", dst / "env");
  }
  expect_only(job, "job");
}

TEST(Tree, ARerunReplacesTheEarlierTreeWhole) {
  LocalJob job(3);
  const fs::path source = job.dir / "src";
  fs::create_directories(source / "a");
  write_file(source / "a" / "old", "old");
  write_file(source / "keep", "v1");
  ASSERT_EQ(run(tree_command(job, {source.string()}, "dst")).exit_code, 0);
  fs::remove(source / "a" / "old");
  write_file(source / "keep", "v2, longer");
  write_file(source / "new", "new");
  const ProcessResult result = run(tree_command(job, {source.string()}, "dst"));
  ASSERT_EQ(result.exit_code, 0) << result.err << result.out;
  for (int rank = 0; rank < job.nodes; ++rank) expect_same_tree(source, job.node_dir(rank) / "dst");
  expect_only(job, "dst");  // the old tree is gone too
}

TEST(Tree, ADirectoryImgcastDidNotPlaceIsRefusedAndNothingIsLeft) {
  LocalJob job(3);
  const fs::path source = job.dir / "src";
  fs::create_directories(source);
  write_file(source / "f", "data");
  // The user's own directory at DST on node 2: never replaced, and refused before data moves.
  fs::create_directories(job.node_dir(2) / "dst");
  write_file(job.node_dir(2) / "dst" / "mine", "precious");
  const ProcessResult result = run(tree_command(job, {source.string()}, "dst"));
  EXPECT_NE(result.exit_code, 0) << result.out;
  EXPECT_NE(result.out.find("imgcast did not place"), std::string::npos) << result.out;
  EXPECT_EQ(list_dir(job.node_dir(2) / "dst"), std::vector<std::string>{"mine"});
  // The others got their tree (the failure is that node's alone), and nobody left staging.
  for (int rank = 0; rank < 2; ++rank) expect_same_tree(source, job.node_dir(rank) / "dst");
  expect_only(job, "dst");
}

TEST(Tree, AFailedTransferLeavesNoStagingFileOrDirectory) {
  LocalJob job(3);
  const fs::path source = job.dir / "src";
  fs::create_directories(source);
  write_random_file(source / "big", 4 << 20, 3);
  // Rank 1's directory is missing: it fails; with --allow-fail 0 the run fails, and no node
  // may keep a staging file or directory.
  fs::remove(job.node_dir(1));
  const ProcessResult result = run(tree_command(job, {source.string()}, "dst"));
  EXPECT_NE(result.exit_code, 0);
  for (const int rank : {0, 2}) {
    EXPECT_FALSE(has_staging_file(job.node_dir(rank))) << rank;
  }
}

// The node-local cache for trees: an unchanged source skips every node whose tree is still as it
// was placed; a tree changed on one node is sent to that node again (the root, a participant
// once anyone needs data, re-sends its own too); a changed source file re-sends everywhere.
TEST(Tree, AnUnchangedTreeIsCachedAndAChangeAnywhereIsSentAgain) {
  LocalJob job(3);
  const fs::path source = job.dir / "src";
  fs::create_directories(source / "sub");
  for (int f = 0; f < 20; ++f) write_file(source / "sub" / fmt::format("f{}", f), "v1");
  fs::create_symlink("sub/f1", source / "link");
  fs::permissions(source, fs::perms(0755));
  const auto cached = [&](std::vector<std::string> extra = {}) {
    extra.push_back("--json");
    const ProcessResult result = run(tree_command(job, {source.string()}, "env", extra));
    EXPECT_EQ(result.exit_code, 0) << result.err;
    const auto report = nlohmann::json::parse(result.out);
    EXPECT_EQ(report.at("totals").at("verified"), 3);
    return report.at("totals").at("cached").get<int>();
  };
  EXPECT_EQ(cached(), 0);
  EXPECT_EQ(cached(), 3);  // nothing changed: no node is sent anything
  write_file(job.node_dir(2) / "env" / "sub" / "f3", "edited on node 2");
  EXPECT_EQ(cached(), 1);  // node 1 stands; node 2 and the root (its source) take the tree again
  for (int rank = 0; rank < 3; ++rank) expect_same_tree(source, job.node_dir(rank) / "env");
  EXPECT_EQ(cached(), 3);
  write_file(source / "sub" / "f9", "v2");  // the source changed: the key says so
  EXPECT_EQ(cached(), 0);
  for (int rank = 0; rank < 3; ++rank) expect_same_tree(source, job.node_dir(rank) / "env");
  EXPECT_EQ(cached({"--force"}), 0);
  expect_only(job, "env");
}

TEST(Tree, ADestinationInsideTheSourceIsRefusedBeforeAnythingStarts) {
  LocalJob job(2);
  const fs::path source = job.dir / "node0";  // DST node%r/dst lands in it on rank 0
  write_file(source / "f", "data");
  const ProcessResult result = run(tree_command(job, {source.string()}, "dst"));
  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
  EXPECT_NE(result.err.find("is inside the source"), std::string::npos) << result.err;
  EXPECT_FALSE(fs::exists(job.node_dir(1) / "dst"));
}

}  // namespace
}  // namespace imgcast::test
