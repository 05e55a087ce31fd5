#include "replicator/tree/tree_walk.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "replicator/errors.h"
#include "replicator/protocol/byte_codec.h"
#include "replicator/tree/dir_listing.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

namespace fs = std::filesystem;

namespace {

std::int64_t nanoseconds(const timespec& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "/" + name;
}

// One walk's state: the tree being built and the hardlink map.
class Walker {
 public:
  Walker(WalkedTree& tree, const ManifestLimits& limits) : tree_(tree), limits_(limits) {}

  // Lists `dir_fd` (manifest path `prefix`, `relative` under root `root`), emits its entries,
  // then walks its subdirectories. `depth`: components in `prefix`.
  void walk(int dir_fd, std::uint32_t root, const std::string& prefix,
            const std::string& relative, std::uint32_t depth) {
    const fs::path shown = tree_.roots[root] / relative;
    auto names = list_directory(dir_fd);
    if (!names) {
      throw InputError(fmt::format("cannot read directory {}: {}", shown.string(),
                                   std::strerror(errno)));
    }
    if (depth + 1 > limits_.max_depth) {
      if (names->empty()) return;
      throw InputError(fmt::format("source {} is deeper than {} levels: imgcast refuses it",
                                   shown.string(), limits_.max_depth));
    }
    std::vector<std::string> subdirectories;
    for (const std::string& name : *names) {
      struct stat st {};
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        throw InputError(fmt::format("cannot stat {} (changed while read?): {}",
                                     (shown / name).string(), std::strerror(errno)));
      }
      const std::string path = join(prefix, name);
      const std::string under_root = join(relative, name);
      if (S_ISDIR(st.st_mode)) {
        add(TreeEntryType::kDirectory, path, st);
        subdirectories.push_back(name);
      } else if (S_ISREG(st.st_mode)) {
        add_file(path, root, under_root, st);
      } else if (S_ISLNK(st.st_mode)) {
        add_symlink(dir_fd, name, path, st, shown / name);
      } else {
        ++tree_.skipped_special;  // a device, socket or FIFO: nothing a copy could carry
      }
    }
    for (const std::string& name : subdirectories) {
      // O_NOFOLLOW: the name was a directory when stat'ed; if it is a symlink now, refuse
      // rather than walk wherever it points.
      UniqueFd child(::openat(dir_fd, name.c_str(),
                              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!child.valid()) {
        throw InputError(fmt::format("cannot open directory {}: {}", (shown / name).string(),
                                     std::strerror(errno)));
      }
      walk(child.get(), root, join(prefix, name), join(relative, name), depth + 1);
    }
  }

  void add_file(const std::string& path, std::uint32_t root, const std::string& relative,
                const struct stat& st) {
    if (st.st_nlink > 1) {
      const auto [where, first] = first_name_.try_emplace({st.st_dev, st.st_ino},
                                                          count_entries());
      if (!first) {
        TreeEntry& link = add(TreeEntryType::kHardlink, path, st);
        link.link_to = where->second;
        return;
      }
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > limits_.max_data_bytes - tree_.manifest.data_bytes) {
      throw InputError(fmt::format("the source holds more than {} bytes: imgcast refuses it",
                                   limits_.max_data_bytes));
    }
    TreeEntry& entry = add(TreeEntryType::kFile, path, st);
    entry.size = size;
    entry.offset = tree_.manifest.data_bytes;
    tree_.manifest.data_bytes += size;
    tree_.files.push_back({.entry = count_entries() - 1,
                           .root = root,
                           .relative = relative,
                           .size = size,
                           .mtime_ns = nanoseconds(st.st_mtim),
                           .ctime_ns = nanoseconds(st.st_ctim),
                           .device = st.st_dev,
                           .inode = st.st_ino});
  }

  void add_symlink(int dir_fd, const std::string& name, const std::string& path,
                   const struct stat& st, const fs::path& shown) {
    // One byte more than the limit tells a too-long target from one exactly at it.
    std::string target(limits_.max_target_bytes + 1, '\0');
    const ssize_t length = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
    if (length < 0) {
      throw InputError(fmt::format("cannot read symlink {}: {}", shown.string(),
                                   std::strerror(errno)));
    }
    if (static_cast<std::size_t>(length) > limits_.max_target_bytes) {
      throw InputError(fmt::format("symlink {} has a target longer than {} bytes",
                                   shown.string(), limits_.max_target_bytes));
    }
    target.resize(static_cast<std::size_t>(length));
    TreeEntry& entry = add(TreeEntryType::kSymlink, path, st);
    entry.target = std::move(target);
  }

  TreeEntry& add(TreeEntryType type, const std::string& path, const struct stat& st) {
    if (tree_.manifest.entries.size() >= limits_.max_entries) {
      throw InputError(fmt::format("the source has more than {} entries: imgcast refuses it",
                                   limits_.max_entries));
    }
    if (path.size() > limits_.max_path_bytes) {
      throw InputError(fmt::format("a path in the source is longer than {} bytes: {}...",
                                   limits_.max_path_bytes, path.substr(0, 80)));
    }
    TreeEntry entry;
    entry.type = type;
    entry.path = path;
    entry.mode = st.st_mode & kTreeModeBits;
    entry.mtime_ns = nanoseconds(st.st_mtim);
    entry.uid = st.st_uid;
    entry.gid = st.st_gid;
    return tree_.manifest.entries.emplace_back(std::move(entry));
  }

  std::uint32_t count_entries() const {
    return static_cast<std::uint32_t>(tree_.manifest.entries.size());
  }

 private:
  WalkedTree& tree_;
  const ManifestLimits& limits_;
  std::map<std::pair<dev_t, ino_t>, std::uint32_t> first_name_;  // hardlinked files seen
};

// The source opened (following a symlink named by the caller) and stat'ed.
UniqueFd open_source(const fs::path& source, struct stat& st) {
  UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    const int error = errno;
    if (error == ENOENT) {
      throw InputError(fmt::format("source {} does not exist", source.string()));
    }
    throw InputError(fmt::format("source {} is not readable: {}", source.string(),
                                 std::strerror(error)));
  }
  if (::fstat(fd.get(), &st) != 0) {
    throw InputError(fmt::format("cannot stat source {}: {}", source.string(),
                                 std::strerror(errno)));
  }
  return fd;
}

// The name a source gets at the top of the tree: its last component ("data/" -> "data").
std::string top_name(const fs::path& source) {
  fs::path normal = source.lexically_normal();
  if (!normal.has_filename()) normal = normal.parent_path();
  const std::string name = normal.filename().string();
  if (name.empty() || name == "." || name == ".." || name == "/") {
    throw InputError(fmt::format("source {} has no name to give it under the destination: name "
                                 "the directory by its path, e.g. ../data instead of .",
                                 source.string()));
  }
  return name;
}

}  // namespace

WalkedTree walk_directory(const fs::path& source, const ManifestLimits& limits) {
  WalkedTree tree;
  tree.roots.push_back(source);
  struct stat st {};
  const UniqueFd fd = open_source(source, st);
  if (!S_ISDIR(st.st_mode)) {
    throw InputError(fmt::format("source {} is not a directory", source.string()));
  }
  tree.manifest.top = {.mode = st.st_mode & kTreeModeBits,
                       .mtime_ns = nanoseconds(st.st_mtim),
                       .uid = st.st_uid,
                       .gid = st.st_gid};
  Walker walker(tree, limits);
  walker.walk(fd.get(), 0, "", "", 0);
  return tree;
}

WalkedTree walk_sources(const std::vector<fs::path>& sources, const ManifestLimits& limits) {
  WalkedTree tree;
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  tree.manifest.top = {
      .mode = 0755,
      .mtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count(),
      .uid = ::geteuid(),
      .gid = ::getegid()};
  Walker walker(tree, limits);
  std::set<std::string> names;
  for (const fs::path& source : sources) {
    const std::string name = top_name(source);
    if (!names.insert(name).second) {
      throw InputError(fmt::format("two sources are named {}: the destination can hold only "
                                   "one; rename one of them",
                                   name));
    }
    const auto root = static_cast<std::uint32_t>(tree.roots.size());
    tree.roots.push_back(source);
    struct stat st {};
    const UniqueFd fd = open_source(source, st);
    if (S_ISDIR(st.st_mode)) {
      walker.add(TreeEntryType::kDirectory, name, st);
      walker.walk(fd.get(), root, name, "", 1);
    } else if (S_ISREG(st.st_mode)) {
      walker.add_file(name, root, "", st);
    } else {
      throw InputError(fmt::format("source {} is neither a regular file nor a directory",
                                   source.string()));
    }
  }
  return tree;
}

std::string tree_source_key(const WalkedTree& tree) {
  // The manifest covers names, types, sizes, modes, mtimes and link targets; inode, device and
  // ctime add what a rewrite in place (same size and mtime, touched back) still changes.
  ByteWriter facts;
  facts.raw(encode_manifest(tree.manifest));
  for (const fs::path& root : tree.roots) {
    facts.str(fs::absolute(root).lexically_normal().string());
  }
  for (const TreeSourceFile& file : tree.files) {
    facts.u64(file.device).u64(file.inode).u64(static_cast<std::uint64_t>(file.ctime_ns));
  }
  ImageHasher hasher;
  hasher.update(facts.bytes());
  return hasher.digest().to_hex();
}

}  // namespace imgcast::replicator
