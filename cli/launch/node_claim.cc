#include "cli/launch/node_claim.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <thread>

#include "replicator/errors.h"
#include "replicator/image/cache_record.h"
#include "replicator/image/file_trust.h"

namespace imgcast::cli::launch {

namespace {

// DST, placed from the node cache: a regular file (not followed through a symlink) of ours that
// no group or other may write, so no one else can have put something else there since.
bool placed_copy_is_ours(int dir_fd, const std::filesystem::path& destination) {
  struct stat st {};
  return ::fstatat(dir_fd, destination.filename().c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         !replicator::file_distrust(st);
}


using replicator::InputError;
using replicator::SecurityError;
using replicator::TransferError;
using replicator::UniqueFd;

constexpr std::size_t kMaxStateBytes = 512;

std::string beside(const std::filesystem::path& destination, const char* suffix) {
  return "." + destination.filename().string() + suffix;
}

// Why a file we opened (or found) under `name` is not ours with mode 0600, or "" when it is.
// Compared with the effective uid: root's own files are ours, uid 65534's are not.
std::string distrust(const struct stat& st) {
  if (!S_ISREG(st.st_mode))
    return "is not a regular file";
  if (st.st_uid != ::geteuid())
    return fmt::format("belongs to uid {}, not to us (uid {})", st.st_uid, ::geteuid());
  if ((st.st_mode & 077) != 0)
    return fmt::format("has mode {:o}, not 0600", st.st_mode & 07777);
  return "";
}

[[noreturn]] void refuse(const std::filesystem::path& path, const std::string& why) {
  throw SecurityError(
      fmt::format("refusing the node file {}: it {}; another user may have "
                  "planted it: remove it or choose another DST",
                  path.string(), why));
}

// An open that failed on a name someone else holds (EACCES on their 0600 file, ELOOP on a
// symlink) is a refusal, not a missing directory.
void refuse_if_planted(int dir_fd, const std::string& name, const std::filesystem::path& path) {
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return;
  if (S_ISLNK(st.st_mode))
    refuse(path, "is a symbolic link");
  if (const std::string why = distrust(st); !why.empty())
    refuse(path, why);
}

}  // namespace

NodeClaim::NodeClaim(const std::filesystem::path& destination, std::chrono::milliseconds timeout)
    : destination_(destination),
      lock_name_(beside(destination, ".imgcast-lock")),
      state_name_(beside(destination, ".imgcast-state")) {
  const std::filesystem::path dir = replicator::directory_of(destination);
  const std::filesystem::path lock_file = dir / lock_name_;
  dir_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_.valid()) {
    lock_.reset(::openat(dir_.get(), lock_name_.c_str(),
                         O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600));
  }
  if (!lock_.valid()) {
    const int error = errno;
    if (dir_.valid())
      refuse_if_planted(dir_.get(), lock_name_, lock_file);
    throw InputError(
        fmt::format("cannot create the node lock {}: {}; check that {} exists and is "
                    "writable",
                    lock_file.string(), std::strerror(error), dir.string()));
  }
  struct stat st {};
  if (::fstat(lock_.get(), &st) != 0)
    throw InputError(fmt::format("cannot stat {}: {}", lock_file.string(), std::strerror(errno)));
  // Before waiting: a lock someone else owns may be held by them for as long as they like.
  if (const std::string why = distrust(st); !why.empty())
    refuse(lock_file, why);
  // Poll a non-blocking flock so the wait is bounded (flock itself has no timeout).
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::chrono::milliseconds pause(5);
  while (::flock(lock_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      throw InputError(fmt::format("cannot lock {}: {}", lock_file.string(), std::strerror(errno)));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      throw TransferError(
          fmt::format("timed out after {} s waiting for another task on this node "
                      "to finish staging {}",
                      timeout.count() / 1000, destination.string()));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(200));
  }
}

NodeState NodeClaim::state(const std::string& job, const std::string& step) const {
  const std::filesystem::path state_file = replicator::directory_of(destination_) / state_name_;
  UniqueFd fd(
      ::openat(dir_.get(), state_name_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd.valid()) {
    refuse_if_planted(dir_.get(), state_name_, state_file);
    return NodeState::kNothing;  // none yet (or unreadable and ours: as good as none)
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return NodeState::kNothing;
  if (const std::string why = distrust(st); !why.empty())
    refuse(state_file, why);
  char buffer[kMaxStateBytes];
  const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
  if (n <= 0)
    return NodeState::kNothing;
  std::istringstream in(std::string(buffer, static_cast<std::size_t>(n)));
  std::string word, recorded_job, recorded_step;
  if (!(in >> word >> recorded_job) || recorded_job != job)
    return NodeState::kNothing;
  if (word == "staged") {
    // Only while DST is still the copy we placed: ours, beside a record of ours that describes
    // it. Someone may have removed or replaced it since. (Not re-hashed: it was verified in
    // this job, and every other task of the node would hash it again, one after another.)
    std::string how;
    if (in >> how && how == "cache") {
      return placed_copy_is_ours(dir_.get(), destination_) ? NodeState::kStaged
                                                            : NodeState::kNothing;
    }
    return replicator::open_cached_copy(destination_) ? NodeState::kStaged : NodeState::kNothing;
  }
  if (word == "failed" && (in >> recorded_step) && recorded_step == step)
    return NodeState::kFailed;
  return NodeState::kNothing;
}

void NodeClaim::record(const std::string& line) {
  // Written whole to a new file of ours, then renamed over the state file: a symlink or a file
  // planted under that name is replaced, never written through.
  const std::string temporary = fmt::format("{}.{}.tmp", state_name_, ::getpid());
  const std::filesystem::path state_file = replicator::directory_of(destination_) / state_name_;
  (void)::unlinkat(dir_.get(), temporary.c_str(), 0);  // a stale one of an earlier process
  UniqueFd out(::openat(dir_.get(), temporary.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  const bool written =
      out.valid() &&
      ::write(out.get(), line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
      ::renameat(dir_.get(), temporary.c_str(), dir_.get(), state_name_.c_str()) == 0;
  if (!written) {
    const int error = errno;
    if (out.valid())
      ::unlinkat(dir_.get(), temporary.c_str(), 0);
    throw TransferError(fmt::format("cannot record the node's state in {}: {}", state_file.string(),
                                    std::strerror(error)));
  }
}

void NodeClaim::record_staged(const std::string& job, bool from_cache) {
  record(fmt::format("staged {}{}\n", job, from_cache ? " cache" : ""));
}

void NodeClaim::record_failed(const std::string& job, const std::string& step) {
  record(fmt::format("failed {} {}\n", job, step));
}

}  // namespace imgcast::cli::launch
