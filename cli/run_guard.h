// run_guarded: the one place the CLI turns exceptions into a one-line error and an exit code.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <functional>
#include <string>

#include "replicator/session/replicate.h"
#include "replicator/session/report.h"

namespace imgcast::cli {

// Runs `body`; an InputError, SecurityError or TransferError (and a transport::Error) becomes
// "imgcast: error: <reason>" on stderr and its exit code.
int run_guarded(const std::function<int()>& body);

// The report's exit code, with a one-line error naming the failed hosts when not all verified.
int report_exit(const replicator::Report& report);

// "4M" -> bytes, as a chunk size: checked against the chunk plan's bounds.
std::uint32_t parse_chunk_size(const std::string& text);

std::string hostname();

// The job key from the file named by IMGCAST_KEY_FILE (64 hex digits, mode 0600, ours), or
// nullopt when the variable is unset. Throws InputError / SecurityError with a one-line reason.
std::optional<replicator::JobKey> key_from_environment();

// --mode: an octal file mode.
// Octal, at most 07777; setuid, setgid and sticky bits only with allow_setid (--allow-setid).
mode_t parse_mode(const std::string& text, bool allow_setid);
// A timeout option in seconds (0, 86400], named `what` in the error.
std::chrono::milliseconds parse_seconds(double seconds, const char* what);

// --topology / --chunk-size ("auto" leaves them to the schedule model) and the link model
// (link_mbit 0: timed during setup).
void apply_plan_options(const std::string& topology, const std::string& chunk_size,
                        double link_mbit, double hop_latency_us,
                        replicator::ReplicateOptions& options);

}  // namespace imgcast::cli
