// libFuzzer target: the job-secret line an agent reads on standard input. Property: a parsed
// secret prints to a line that parses to the same secret.
#include <cstdlib>
#include <string_view>

#include "replicator/protocol/job_secret.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using imgcast::replicator::JobSecret;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  if (const auto secret = JobSecret::parse(line)) {
    const auto again = JobSecret::parse(secret->to_line());
    if (!again || again->job != secret->job || again->key.bytes != secret->key.bytes ||
        again->transport != secret->transport) {
      std::abort();
    }
  }
  return 0;
}
