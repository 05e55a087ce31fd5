#include "cli/run_guard.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli/parse.h"
#include "replicator/errors.h"
#include "replicator/plan/chunk_plan.h"
#include "replicator/session/host_names.h"
#include "replicator/unique_fd.h"
#include "transport/error.h"

namespace imgcast::cli {

using replicator::ExitCode;

int run_guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (const replicator::ImgcastError& error) {
    std::cerr << "imgcast: error: " << error.what() << "\n";
    return static_cast<int>(error.code());
  } catch (const transport::Error& error) {
    std::cerr << "imgcast: error: " << error.what() << "\n";
    const auto code = error.status().code();
    if (code == transport::StatusCode::kInvalidArgument)
      return static_cast<int>(ExitCode::kUsage);
    if (code == transport::StatusCode::kPermissionDenied) {
      return static_cast<int>(ExitCode::kSecurity);
    }
    return static_cast<int>(ExitCode::kTransferFailed);
  } catch (const std::exception& error) {
    std::cerr << "imgcast: error: " << error.what() << "\n";
    return static_cast<int>(ExitCode::kTransferFailed);
  }
}

int report_exit(const replicator::Report& report) {
  const ExitCode code = report.exit_code();
  const std::size_t failures = report.nodes.size() - report.verified_count();
  if (failures > 0) {
    std::vector<std::string> failed;
    for (const auto& node : report.nodes) {
      if (!node.verified) {
        failed.push_back(fmt::format("{} ({})", node.host, node.failure));
      }
    }
    // Within --allow-fail the run succeeds, but the failed nodes are still named.
    std::cerr << fmt::format(
        "imgcast: {}: {} of {} nodes failed{}: {}\n",
        code == ExitCode::kSuccess ? "warning" : "error", failures, report.nodes.size(),
        code == ExitCode::kSuccess
            ? fmt::format(" (allowed: --allow-fail {})", report.allowed_failures)
            : "",
        replicator::name_at_most(failed, "; "));
  }
  return static_cast<int>(code);
}

std::optional<replicator::JobKey> key_from_environment() {
  const char* path = std::getenv("IMGCAST_KEY_FILE");
  if (path == nullptr || *path == '\0')
    return std::nullopt;
  replicator::UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
    throw replicator::InputError(fmt::format(
        "IMGCAST_KEY_FILE {} cannot be read: {}; unset it for a fresh key per run", path,
        std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    throw replicator::SecurityError(fmt::format(
        "IMGCAST_KEY_FILE {} must be a regular file of yours with mode 0600 (it is {:04o}, uid "
        "{}): refusing a key others could read",
        path, st.st_mode & 07777, st.st_uid));
  }
  char text[129] = {};
  const ssize_t n = ::read(fd.get(), text, sizeof text - 1);
  std::string_view hex(text, n > 0 ? static_cast<std::size_t>(n) : 0);
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == ' ' || hex.back() == '\r'))
    hex.remove_suffix(1);
  const auto key = replicator::JobKey::from_hex(hex);
  if (!key) {
    throw replicator::InputError(fmt::format(
        "IMGCAST_KEY_FILE {} does not hold a key: write 64 hex digits (openssl rand -hex 32)",
        path));
  }
  return key;
}

std::uint32_t parse_chunk_size(const std::string& text) {
  const std::uint64_t bytes = parse_size(text, "--chunk-size");
  if (bytes < replicator::ChunkPlan::kMinChunkBytes ||
      bytes > replicator::ChunkPlan::kMaxChunkBytes) {
    throw replicator::InputError(
        fmt::format("--chunk-size {} is outside 4K..1G: pick e.g. 4M (the default)", text));
  }
  return static_cast<std::uint32_t>(bytes);
}

void apply_plan_options(const std::string& topology, const std::string& chunk_size,
                        double link_mbit, double hop_latency_us,
                        replicator::ReplicateOptions& options) {
  if (topology != "auto") {
    options.topology = topology;
  }
  if (chunk_size != "auto") {
    options.chunk_bytes = parse_chunk_size(chunk_size);
  }
  // 0 (the default): measured during setup. A given speed is the plan's, as it is.
  if (link_mbit > 0) {
    options.link.beta_bytes_per_second = link_mbit * 1e6 / 8;
    options.measure_link = false;
  }
  options.link.alpha_seconds = hop_latency_us * 1e-6;
}

mode_t parse_mode(const std::string& text, bool allow_setid) {
  std::size_t used = 0;
  unsigned long value = 0;
  try {
    value = std::stoul(text, &used, 8);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || value > 07777) {
    throw replicator::InputError(
        fmt::format("--mode '{}' is not an octal file mode: use e.g. 0644 or 0755", text));
  }
  // A setuid copy of an image nobody meant to be setuid is a privilege waiting to be taken: a
  // typo (4755 for 0755) must not make one silently.
  if ((value & 07000) != 0 && !allow_setid) {
    throw replicator::InputError(fmt::format(
        "--mode {} would make {} copies: pass --allow-setid if you mean it", text,
        (value & 04000) ? "setuid" : (value & 02000) ? "setgid" : "sticky"));
  }
  return static_cast<mode_t>(value);
}

std::chrono::milliseconds parse_seconds(double seconds, const char* what) {
  if (!(seconds > 0) || seconds > 86400) {
    throw replicator::InputError(fmt::format(
        "{} {} is out of range: use a number of seconds between 0 and 86400", what, seconds));
  }
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

std::string hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) {
    return "localhost";
  }
  return name;
}

}  // namespace imgcast::cli
