#include "replicator/tree/tree_stream.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "replicator/errors.h"
#include "replicator/tree/stream_layout.h"

namespace imgcast::replicator {

namespace fs = std::filesystem;

namespace {

std::int64_t nanoseconds(const timespec& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size() && !path.empty()) {
    const std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) {
      out.push_back(path.substr(start));
      break;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

}  // namespace

TreeStream::TreeStream(WalkedTree tree, const ManifestLimits& limits)
    : tree_(std::move(tree)), prefix_(encode_tree_prefix(tree_.manifest, limits)) {
  digest_ = replicator::manifest_digest(std::span(prefix_).subspan(kTreeHeaderBytes));
  cache_key_ = tree_source_key(tree_);
}

void TreeStream::read(const Chunk& chunk, std::span<std::byte> into) const {
  std::uint64_t offset = chunk.offset;
  std::span<std::byte> rest = into.first(chunk.length);
  if (offset < prefix_.size()) {
    const std::size_t n = std::min<std::uint64_t>(rest.size(), prefix_.size() - offset);
    std::memcpy(rest.data(), prefix_.data() + offset, n);
    rest = rest.subspan(n);
    offset += n;
  }
  while (!rest.empty()) {
    const std::size_t n = read_data(offset - prefix_.size(), rest);
    rest = rest.subspan(n);
    offset += n;
  }
}

std::size_t TreeStream::read_data(std::uint64_t offset, std::span<std::byte> into) const {
  const auto& entries = tree_.manifest.entries;
  const auto end_of = [&](const TreeSourceFile& file) {
    return entries[file.entry].offset + file.size;
  };
  // The first file whose bytes end past `offset`: empty files are never opened, they hold none.
  const auto found = std::partition_point(tree_.files.begin(), tree_.files.end(),
                                          [&](const auto& file) { return end_of(file) <= offset; });
  if (found == tree_.files.end()) {
    throw TransferError(fmt::format("read past the end of the tree's {} data bytes",
                                    tree_.manifest.data_bytes));
  }
  const auto index = static_cast<std::size_t>(found - tree_.files.begin());
  if (index != open_index_) open_file(index);
  const TreeSourceFile& file = *found;
  const std::uint64_t start = entries[file.entry].offset;
  const std::uint64_t in_file = offset - start;
  const std::size_t want = std::min<std::uint64_t>(into.size(), file.size - in_file);
  std::size_t done = 0;
  while (done < want) {
    const ssize_t n = ::pread(open_file_.get(), into.data() + done, want - done,
                              static_cast<off_t>(in_file + done));
    if (n < 0 && errno == EINTR) continue;
    const fs::path shown = tree_.roots[file.root] / file.relative;
    if (n < 0) {
      throw TransferError(fmt::format("reading {} failed: {}", shown.string(),
                                      std::strerror(errno)));
    }
    if (n == 0) {
      throw TransferError(fmt::format("{} shrank while read ({} of {} bytes): do not change the "
                                      "source during a transfer",
                                      shown.string(), in_file + done, file.size));
    }
    done += static_cast<std::size_t>(n);
  }
  if (in_file + done == file.size) close_file_checked();
  return done;
}

void TreeStream::open_file(std::size_t index) const {
  open_file_.reset();
  open_index_ = SIZE_MAX;
  const TreeSourceFile& file = tree_.files[index];
  const fs::path shown = tree_.roots[file.root] / file.relative;
  UniqueFd fd;
  if (file.relative.empty()) {
    // The root is this file: named by the caller, so opened as the walk opened it.
    fd.reset(::open(tree_.roots[file.root].c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  } else {
    const std::size_t slash = file.relative.rfind('/');
    const std::string name =
        slash == std::string::npos ? file.relative : file.relative.substr(slash + 1);
    const int dir = directory_fd(file.root, file.relative);
    // O_NONBLOCK: a FIFO swapped in since the walk must not hang the root in open().
    fd.reset(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  }
  if (!fd.valid()) {
    throw TransferError(fmt::format("cannot open {}: {}", shown.string(), std::strerror(errno)));
  }
  ++files_opened_;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_ino != file.inode ||
      st.st_dev != file.device || static_cast<std::uint64_t>(st.st_size) != file.size ||
      nanoseconds(st.st_mtim) != file.mtime_ns) {
    throw TransferError(fmt::format("{} changed between the walk and its read: do not change the "
                                    "source during a transfer",
                                    shown.string()));
  }
  (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);  // advice only
  open_file_ = std::move(fd);
  open_index_ = index;
}

int TreeStream::directory_fd(std::uint32_t root, const std::string& relative) const {
  if (root != open_root_) {
    dirs_.clear();
    root_fd_.reset(::open(tree_.roots[root].c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd_.valid()) {
      open_root_ = UINT32_MAX;
      throw TransferError(fmt::format("cannot open source directory {}: {}",
                                      tree_.roots[root].string(), std::strerror(errno)));
    }
    open_root_ = root;
  }
  std::vector<std::string> wanted = components(relative);
  wanted.pop_back();  // the file's own name
  // Keep the directories the previous file shared with this one; open only the rest.
  std::size_t shared = 0;
  while (shared < dirs_.size() && shared < wanted.size() && dirs_[shared].first == wanted[shared])
    ++shared;
  dirs_.resize(shared);
  for (std::size_t i = shared; i < wanted.size(); ++i) {
    const int parent = dirs_.empty() ? root_fd_.get() : dirs_.back().second.get();
    UniqueFd dir(::openat(parent, wanted[i].c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.valid()) {
      throw TransferError(fmt::format("cannot open directory {} under {}: {}", wanted[i],
                                      tree_.roots[root].string(), std::strerror(errno)));
    }
    dirs_.emplace_back(wanted[i], std::move(dir));
  }
  return dirs_.empty() ? root_fd_.get() : dirs_.back().second.get();
}

void TreeStream::close_file_checked() const {
  const TreeSourceFile& file = tree_.files[open_index_];
  struct stat st {};
  // A file written to while it was read has a new mtime or size: its bytes may be torn.
  if (::fstat(open_file_.get(), &st) != 0 ||
      static_cast<std::uint64_t>(st.st_size) != file.size ||
      nanoseconds(st.st_mtim) != file.mtime_ns) {
    throw TransferError(fmt::format("{} changed while it was read: do not change the source "
                                    "during a transfer",
                                    (tree_.roots[file.root] / file.relative).string()));
  }
  open_file_.reset();
  open_index_ = SIZE_MAX;
}

}  // namespace imgcast::replicator
