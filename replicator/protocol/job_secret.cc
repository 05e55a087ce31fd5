#include "replicator/protocol/job_secret.h"

#include <fmt/format.h>

#include <sstream>

namespace imgcast::replicator {

namespace {
constexpr std::string_view kFallbackSuffix = "+tcp";
}  // namespace

std::string JobSecret::to_line() const {
  const bool fallback = transport_fallback && transport != transport::Kind::kTcp;
  return fmt::format("IMGCAST1 {} {} {}{}\n", to_hex(job), key.to_hex(),
                     transport::to_string(transport), fallback ? kFallbackSuffix : "");
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
  if (kind_name.size() > kFallbackSuffix.size() && kind_name.ends_with(kFallbackSuffix)) {
    kind_name.resize(kind_name.size() - kFallbackSuffix.size());
    secret.transport_fallback = true;
  }
  const auto key = JobKey::from_hex(key_hex);
  const auto kind = transport::parse_kind(kind_name);
  if (!parse_hex(job_hex, secret.job) || !key || !kind ||
      (secret.transport_fallback && *kind == transport::Kind::kTcp)) {
    return std::nullopt;
  }
  secret.key = *key;
  secret.transport = *kind;
  return secret;
}

}  // namespace imgcast::replicator
