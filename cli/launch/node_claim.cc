#include "cli/launch/node_claim.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "replicator/errors.h"

namespace imgcast::cli::launch {

namespace {

using replicator::InputError;
using replicator::TransferError;

std::filesystem::path beside(const std::filesystem::path& destination, const char* suffix) {
  return destination.parent_path() / ("." + destination.filename().string() + suffix);
}

}  // namespace

NodeClaim::NodeClaim(const std::filesystem::path& destination, std::chrono::milliseconds timeout)
    : destination_(destination), state_file_(beside(destination, ".imgcast-state")) {
  const std::filesystem::path lock_file = beside(destination, ".imgcast-lock");
  lock_.reset(::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!lock_.valid()) {
    throw InputError(fmt::format("cannot create the node lock {}: {}; check that {} exists and is "
                                 "writable",
                                 lock_file.string(), std::strerror(errno),
                                 destination.parent_path().string()));
  }
  // Poll a non-blocking flock so the wait is bounded (flock itself has no timeout).
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::chrono::milliseconds pause(5);
  while (::flock(lock_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      throw InputError(
          fmt::format("cannot lock {}: {}", lock_file.string(), std::strerror(errno)));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      throw TransferError(fmt::format("timed out after {} s waiting for another task on this node "
                                      "to finish staging {}",
                                      timeout.count() / 1000, destination.string()));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(200));
  }
}

NodeState NodeClaim::state(const std::string& job, const std::string& step) const {
  std::ifstream in(state_file_);
  std::string word, recorded_job, recorded_step;
  if (!(in >> word >> recorded_job) || recorded_job != job)
    return NodeState::kNothing;
  if (word == "staged") {
    // Only if the file is still there: someone may have removed it since.
    std::error_code error;
    return std::filesystem::is_regular_file(destination_, error) ? NodeState::kStaged
                                                                 : NodeState::kNothing;
  }
  if (word == "failed" && (in >> recorded_step) && recorded_step == step)
    return NodeState::kFailed;
  return NodeState::kNothing;
}

void NodeClaim::record_staged(const std::string& job) {
  std::ofstream(state_file_, std::ios::trunc) << "staged " << job << "\n";
}

void NodeClaim::record_failed(const std::string& job, const std::string& step) {
  std::ofstream(state_file_, std::ios::trunc) << "failed " << job << " " << step << "\n";
}

}  // namespace imgcast::cli::launch
