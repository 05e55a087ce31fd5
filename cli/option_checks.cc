#include "cli/option_checks.h"

#include "cli/run_guard.h"

namespace imgcast::cli {

namespace {

// The reason the run-time parser gives, without the option's name (CLI11 puts it first).
std::string reason_of(const std::exception& error, const std::string& name) {
  std::string reason = error.what();
  if (reason.rfind(name + " ", 0) == 0)
    reason.erase(0, name.size() + 1);
  return reason;
}

}  // namespace

CLI::Validator transport_check() { return CLI::IsMember({"tcp", "ucx", "verbs", "auto"}); }

CLI::Validator chunk_size_check() {
  return CLI::Validator(
      [](const std::string& value) {
        if (value == "auto")
          return std::string();
        try {
          parse_chunk_size(value);
        } catch (const std::exception& error) {
          return reason_of(error, "--chunk-size");
        }
        return std::string();
      },
      "SIZE|auto");
}

CLI::Validator mode_check() {
  return CLI::Validator(
      [](const std::string& value) {
        try {
          parse_mode(value, true);
        } catch (const std::exception& error) {
          return reason_of(error, "--mode");
        }
        return std::string();
      },
      "OCTAL");
}

CLI::Validator seconds_check() {
  return CLI::Validator(
      [](const std::string& value) {
        try {
          parse_seconds(std::stod(value), "");
        } catch (const std::exception&) {
          return std::string("not a number of seconds between 0 and 86400");
        }
        return std::string();
      },
      "SECONDS");
}

}  // namespace imgcast::cli
