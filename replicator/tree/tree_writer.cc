#include "replicator/tree/tree_writer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "replicator/errors.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

namespace {

timespec to_timespec(std::int64_t ns) {
  timespec t{};
  t.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  t.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  if (t.tv_nsec < 0) {  // before 1970: the remainder is negative, tv_nsec may not be
    t.tv_nsec += 1'000'000'000;
    t.tv_sec -= 1;
  }
  return t;
}

std::string_view parent_of(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view{} : path.substr(0, slash);
}

std::string name_of(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::size_t depth_of(std::string_view path) {
  return static_cast<std::size_t>(std::count(path.begin(), path.end(), '/')) + 1;
}

// The process's umask, from /proc/self/status (umask(2) can only be read by setting it, which
// would race other threads creating files); -1 when the kernel does not say.
int current_umask() {
  UniqueFd status(::open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  char text[4096];
  const ssize_t n = status.valid() ? ::read(status.get(), text, sizeof text - 1) : -1;
  if (n <= 0) return -1;
  text[n] = '\0';
  const char* line = std::strstr(text, "\nUmask:");
  return line != nullptr ? static_cast<int>(std::strtol(line + 8, nullptr, 8)) : -1;
}

[[noreturn]] void fail(std::string_view what, std::string_view path) {
  throw TransferError(fmt::format("cannot {} {} in the staging tree: {}", what, path,
                                  std::strerror(errno)));
}

// The open directories from the top down to the last one asked for. A tree's entries come
// directory by directory, so the next entry's parent is usually open already; otherwise only
// the components that differ are opened, one at a time, each O_NOFOLLOW|O_DIRECTORY.
class DirectoryCursor {
 public:
  explicit DirectoryCursor(int top_fd) : top_fd_(top_fd) {}

  // An fd of directory `path` ("" is the top), valid until the next call.
  int at(std::string_view path) {
    // Keep the longest open prefix of `path` that ends at a component boundary.
    while (!open_.empty()) {
      const std::string& held = open_.back().first;
      if (path.size() >= held.size() && path.substr(0, held.size()) == held &&
          (path.size() == held.size() || path[held.size()] == '/')) {
        break;
      }
      open_.pop_back();
    }
    std::size_t done = open_.empty() ? 0 : open_.back().first.size() + 1;
    while (done < path.size() + 1 && !path.empty()) {
      const std::size_t slash = path.find('/', done);
      const std::size_t end = slash == std::string_view::npos ? path.size() : slash;
      const std::string name(path.substr(done, end - done));
      const int parent = open_.empty() ? top_fd_ : open_.back().second.get();
      UniqueFd dir(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir.valid()) fail("open directory", path.substr(0, end));
      open_.emplace_back(std::string(path.substr(0, end)), std::move(dir));
      done = end + 1;
    }
    return open_.empty() ? top_fd_ : open_.back().second.get();
  }

 private:
  int top_fd_;
  std::vector<std::pair<std::string, UniqueFd>> open_;
};

void write_all(int fd, std::span<const std::byte> bytes, std::string_view path) {
  while (!bytes.empty()) {
    // At most 1 GiB a call: Linux writes at most ~2 GiB at once anyway.
    const ssize_t n = ::write(fd, bytes.data(), std::min<std::size_t>(bytes.size(), 1u << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write", path);
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
}

class Builder {
 public:
  Builder(int top_fd, const TreeManifest& manifest, std::span<const std::byte> data,
          const TreeWriteOptions& options)
      : top_fd_(top_fd), manifest_(manifest), data_(data), options_(options),
        cursor_(top_fd), link_cursor_(top_fd), umask_(current_umask()) {
    // What an entry created here gets by itself: our uid, and our gid or, under a setgid
    // directory (inherited by every directory made below it), that directory's. An entry whose
    // manifest owners are those needs no chown: a user's own tree, the common case, saves a
    // system call per entry (tree placement is most of a node's CPU: docs/perf.md).
    struct stat top {};
    own_gid_ = ::fstat(top_fd, &top) == 0 && (top.st_mode & S_ISGID) != 0 ? top.st_gid
                                                                          : ::getegid();
  }

  TreeCounts run() {
    std::vector<std::uint32_t> symlinks;
    std::vector<std::uint32_t> directories;
    for (std::uint32_t i = 0; i < manifest_.entries.size(); ++i) {
      check_stop();
      const TreeEntry& entry = manifest_.entries[i];
      switch (entry.type) {
        case TreeEntryType::kDirectory:
          make_directory(entry);
          directories.push_back(i);
          break;
        case TreeEntryType::kFile:
          write_file(entry);
          break;
        case TreeEntryType::kHardlink:
          make_hardlink(entry);
          break;
        case TreeEntryType::kSymlink:
          symlinks.push_back(i);  // last: nothing may be created through one
          break;
      }
    }
    for (const std::uint32_t i : symlinks) make_symlink(manifest_.entries[i]);
    // Deepest first, so a directory's own metadata is set after everything inside it.
    std::stable_sort(directories.begin(), directories.end(), [&](auto a, auto b) {
      return depth_of(manifest_.entries[a].path) > depth_of(manifest_.entries[b].path);
    });
    for (const std::uint32_t i : directories) {
      const TreeEntry& entry = manifest_.entries[i];
      finish_directory(cursor_.at(entry.path), entry.mode, entry.mtime_ns, entry.uid, entry.gid,
                       entry.path);
    }
    const TreeTop& top = manifest_.top;
    finish_directory(top_fd_, top.mode, top.mtime_ns, top.uid, top.gid, ".");
    check_stop();
    if (options_.flush == TreeWriteOptions::Flush::kSyncfs && ::syncfs(top_fd_) != 0) {
      fail("flush", ".");
    }
    return counts_;
  }

 private:
  void check_stop() const {
    if (options_.stop != nullptr && options_.stop()) {
      throw TransferError("stopped while writing the tree (a stop signal)");
    }
  }
  void make_directory(const TreeEntry& entry) {
    // 0700 while it is filled: nobody else sees a half-built directory, and we can write it.
    const int parent = cursor_.at(parent_of(entry.path));
    if (::mkdirat(parent, name_of(entry.path).c_str(), 0700) != 0) {
      fail("create directory", entry.path);
    }
    ++counts_.directories;
  }

  bool needs_chown(const TreeEntry& entry) const {
    return options_.keep_owner && (entry.uid != ::geteuid() || entry.gid != own_gid_);
  }

  void write_file(const TreeEntry& entry) {
    if (options_.await_data && entry.size > 0) {
      options_.await_data(entry.offset + entry.size);
    }
    const int parent = cursor_.at(parent_of(entry.path));
    mode_t mode = entry.mode;
    if (!options_.keep_owner) {
      mode &= ~static_cast<mode_t>(S_ISUID | S_ISGID);
    }
    // Created with its own mode when the umask leaves that mode whole and it has no special bit
    // (chown would clear setuid/setgid, and fchmod must come after it): no fchmod. The file is
    // written through this fd whatever its mode, unseen by others inside the 0700 staging tree.
    const bool mode_at_create = umask_ >= 0 && (mode & 07000) == 0 &&
                                (mode & static_cast<mode_t>(umask_)) == 0;
    UniqueFd file(::openat(parent, name_of(entry.path).c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                           mode_at_create ? mode : 0600));
    if (!file.valid()) fail("create", entry.path);
    write_all(file.get(), data_.subspan(entry.offset, entry.size), entry.path);
    if (needs_chown(entry) && ::fchown(file.get(), entry.uid, entry.gid) != 0) {
      fail("set the owner of", entry.path);
    }
    if (!mode_at_create && ::fchmod(file.get(), mode) != 0) fail("set the mode of", entry.path);
    const timespec times[2] = {to_timespec(entry.mtime_ns), to_timespec(entry.mtime_ns)};
    if (::futimens(file.get(), times) != 0) fail("set the mtime of", entry.path);
    if (options_.flush == TreeWriteOptions::Flush::kPerFile && ::fsync(file.get()) != 0) {
      fail("flush", entry.path);
    }
    ++counts_.files;
    counts_.bytes += entry.size;
  }

  void make_hardlink(const TreeEntry& entry) {
    const TreeEntry& target = manifest_.entries[entry.link_to];
    const int from = link_cursor_.at(parent_of(target.path));
    const int parent = cursor_.at(parent_of(entry.path));
    // Flags 0: linkat never follows a symlink at the old name, and the target is a regular file
    // this writer created.
    if (::linkat(from, name_of(target.path).c_str(), parent, name_of(entry.path).c_str(), 0) !=
        0) {
      fail("hardlink", entry.path);
    }
    ++counts_.hardlinks;
  }

  void make_symlink(const TreeEntry& entry) {
    const int parent = cursor_.at(parent_of(entry.path));
    const std::string name = name_of(entry.path);
    if (::symlinkat(entry.target.c_str(), parent, name.c_str()) != 0) {
      fail("create symlink", entry.path);
    }
    if (needs_chown(entry) &&
        ::fchownat(parent, name.c_str(), entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) != 0) {
      fail("set the owner of", entry.path);
    }
    const timespec times[2] = {to_timespec(entry.mtime_ns), to_timespec(entry.mtime_ns)};
    if (::utimensat(parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      fail("set the mtime of", entry.path);
    }
    ++counts_.symlinks;
  }

  void finish_directory(int fd, std::uint32_t mode, std::int64_t mtime_ns, std::uint32_t uid,
                        std::uint32_t gid, std::string_view path) {
    if (options_.keep_owner && ::fchown(fd, uid, gid) != 0) fail("set the owner of", path);
    if (::fchmod(fd, mode) != 0) fail("set the mode of", path);
    const timespec times[2] = {to_timespec(mtime_ns), to_timespec(mtime_ns)};
    if (::futimens(fd, times) != 0) fail("set the mtime of", path);
    if (options_.flush == TreeWriteOptions::Flush::kPerFile && ::fsync(fd) != 0) {
      fail("flush", path);
    }
  }

  int top_fd_;
  const TreeManifest& manifest_;
  std::span<const std::byte> data_;
  const TreeWriteOptions& options_;
  DirectoryCursor cursor_;       // parents of the entries being created
  DirectoryCursor link_cursor_;  // parents of hardlink targets
  int umask_;                    // the process's, -1: unknown (every file gets its fchmod)
  gid_t own_gid_;                // the group an entry created here gets by itself
  TreeCounts counts_;
};

}  // namespace

TreeCounts write_tree(int top_fd, const TreeManifest& manifest, std::span<const std::byte> data,
                      const TreeWriteOptions& options, const ManifestLimits& limits) {
  // The manifest may not come from decode_manifest(): everything below relies on its checks.
  if (const std::string bad = validate_manifest(manifest, limits); !bad.empty()) {
    throw SecurityError("refused a tree manifest: " + bad);
  }
  if (data.size() != manifest.data_bytes) {
    throw SecurityError(fmt::format("refused a tree: {} data bytes where its manifest says {}",
                                    data.size(), manifest.data_bytes));
  }
  return Builder(top_fd, manifest, data, options).run();
}

}  // namespace imgcast::replicator
