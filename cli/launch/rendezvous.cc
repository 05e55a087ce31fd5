#include "cli/launch/rendezvous.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "replicator/errors.h"
#include "replicator/unique_fd.h"

namespace imgcast::cli::launch {

namespace {

using replicator::InputError;
using replicator::SecurityError;
using replicator::TransferError;
using replicator::UniqueFd;

constexpr std::string_view kMagic = "IMGCAST-RENDEZVOUS 1";
constexpr std::string_view kFailed = "FAILED";
constexpr std::size_t kMaxFileBytes = 4096;

}  // namespace

std::string file_name_safe(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok)
      c = '_';
  }
  return out.substr(0, 64);
}

Rendezvous::Rendezvous(std::filesystem::path directory, const std::string& key)
    : directory_(std::move(directory)) {
  // The key's hash keeps the name short and unique whatever the destination path holds.
  const auto hash = XXH3_64bits(key.data(), key.size());
  file_ = directory_ / fmt::format(".imgcast-rendezvous-{}-{:016x}", file_name_safe(key), hash);
}

void Rendezvous::publish(const Invitation& invitation) {
  std::string secret = invitation.secret_line;
  while (!secret.empty() && secret.back() == '\n')
    secret.pop_back();
  if (invitation.control_address == kFailed ||
      invitation.control_address.find('\n') != std::string::npos ||
      secret.find('\n') != std::string::npos) {
    throw InputError("a rendezvous line holds a newline");  // never from our own callers
  }
  write_file(invitation.control_address, secret);
}

void Rendezvous::publish_failure(const std::string& reason) noexcept {
  std::string line = reason.substr(0, 1024);
  std::replace(line.begin(), line.end(), '\n', ' ');
  try {
    write_file(std::string(kFailed), line);
  } catch (const std::exception&) {
    // The others will time out instead, naming the rendezvous file.
  }
}

void Rendezvous::write_file(const std::string& second_line, const std::string& third_line) {
  const std::string text = fmt::format("{}\n{}\n{}\n", kMagic, second_line, third_line);
  const std::filesystem::path temp = file_.string() + fmt::format(".{}.tmp", ::getpid());
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) {
    throw InputError(fmt::format(
        "cannot write the rendezvous file in {}: {}; pass --rendezvous DIR, a directory every "
        "node shares and you can write",
        directory_.string(), std::strerror(errno)));
  }
  const bool written = ::write(fd.get(), text.data(), text.size()) ==
                           static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd.get()) == 0;
  fd.reset();
  if (!written || ::rename(temp.c_str(), file_.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temp.c_str());
    throw InputError(fmt::format("cannot publish the rendezvous file {}: {}", file_.string(),
                                 std::strerror(saved)));
  }
}

Invitation Rendezvous::wait(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::chrono::milliseconds pause(20);
  for (;;) {
    UniqueFd fd(::open(file_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.valid()) {
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        throw SecurityError(
            fmt::format("rendezvous {} is not a regular file: refusing it", file_.string()));
      }
      if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
        throw SecurityError(fmt::format(
            "rendezvous {} is owned by uid {} with mode {:04o}, not ours with 0600: refusing it "
            "(another user may have planted it); remove it and run again",
            file_.string(), st.st_uid, st.st_mode & 07777));
      }
      char buffer[kMaxFileBytes];
      const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
      const std::string_view text(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
      const std::size_t first = text.find('\n');
      const std::size_t second = first == std::string_view::npos ? first : text.find('\n', first + 1);
      const std::size_t third =
          second == std::string_view::npos ? second : text.find('\n', second + 1);
      if (third == std::string_view::npos || text.substr(0, first) != kMagic ||
          third + 1 != text.size()) {
        throw InputError(fmt::format("rendezvous {} is malformed: remove it and run again",
                                     file_.string()));
      }
      Invitation invitation{std::string(text.substr(first + 1, second - first - 1)),
                            std::string(text.substr(second + 1, third - second - 1))};
      if (invitation.control_address == kFailed) {
        throw TransferError(fmt::format("node 0 failed before the transfer: {}",
                                        invitation.secret_line));
      }
      return invitation;
    }
    if (errno != ENOENT) {
      throw InputError(fmt::format("cannot read rendezvous {}: {}", file_.string(),
                                   std::strerror(errno)));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      throw TransferError(fmt::format(
          "timed out after {} s waiting for node 0 to publish {} (did node 0 start? is {} shared "
          "by every node? pass --rendezvous DIR on a shared file system)",
          timeout.count() / 1000, file_.string(), directory_.string()));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
}

void Rendezvous::withdraw() noexcept { ::unlink(file_.c_str()); }

}  // namespace imgcast::cli::launch
