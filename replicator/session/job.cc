#include "replicator/session/job.h"

#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <sstream>
#include <vector>

#include "replicator/errors.h"
#include "replicator/unique_fd.h"
#include "transport/error.h"

namespace imgcast::replicator {

std::string JobSecret::to_line() const {
  return fmt::format("IMGCAST1 {} {} {}\n", to_hex(job), key.to_hex(),
                     transport::to_string(transport));
}

std::optional<JobSecret> JobSecret::parse(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.remove_suffix(1);
  }
  std::istringstream in{std::string(line)};
  std::string magic, job_hex, key_hex, kind_name, extra;
  if (!(in >> magic >> job_hex >> key_hex >> kind_name) || (in >> extra) || magic != "IMGCAST1") {
    return std::nullopt;
  }
  JobSecret secret;
  const auto key = JobKey::from_hex(key_hex);
  const auto kind = transport::parse_kind(kind_name);
  if (!parse_hex(job_hex, secret.job) || !key || !kind) {
    return std::nullopt;
  }
  secret.key = *key;
  secret.transport = *kind;
  return secret;
}

std::string expand_destination(std::string_view pattern, int rank, std::string_view host) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%') {
      out.push_back(pattern[i]);
      continue;
    }
    if (i + 1 == pattern.size()) {
      throw InputError(fmt::format(
          "destination '{}' ends in a lone '%': use %r (rank), %h (host) or %%", pattern));
    }
    switch (pattern[++i]) {
      case 'r':
        out += std::to_string(rank);
        break;
      case 'h':
        out += host;
        break;
      case '%':
        out.push_back('%');
        break;
      default:
        throw InputError(
            fmt::format("destination '{}' has an unknown '%{}': use %r (rank), %h "
                        "(host) or %%",
                        pattern, pattern[i]));
    }
  }
  return out;
}

bool is_this_machine(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), "0", &hints, &found) != 0) {
    return false;
  }
  bool local = false;
  for (const addrinfo* a = found; a != nullptr && !local; a = a->ai_next) {
    UniqueFd probe(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    local = probe.valid() && ::bind(probe.get(), a->ai_addr, a->ai_addrlen) == 0;
  }
  ::freeaddrinfo(found);
  return local;
}

void wait_readable(std::span<const int> fds, std::chrono::milliseconds timeout) {
  // On the stack: the loops call this once per turn, for every chunk.
  std::array<pollfd, kMaxWaitFds> set{};
  const std::size_t count = std::min(fds.size(), set.size());
  for (std::size_t i = 0; i < count; ++i) {
    set[i] = pollfd{fds[i], POLLIN, 0};  // a negative fd is skipped by poll
  }
  // EINTR is fine: the caller looks at its signal flag and its contexts right after.
  (void)::poll(set.data(), count, static_cast<int>(timeout.count()));
}

void drain(transport::Context& context, std::vector<transport::Completion>& out) {
  const transport::Status status = context.poll(out, std::chrono::milliseconds(0));
  if (!status.is_ok()) {
    throw TransferError(fmt::format("the {} transport failed: {}",
                                    transport::to_string(context.kind()), status.to_string()));
  }
}

}  // namespace imgcast::replicator
