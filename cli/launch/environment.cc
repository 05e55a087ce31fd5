#include "cli/launch/environment.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>

#include "replicator/errors.h"

namespace imgcast::cli::launch {

Environment process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr || *value == '\0')
      return std::nullopt;
    return std::string(value);
  };
}

Environment table_environment(std::map<std::string, std::string, std::less<>> table) {
  return [table = std::move(table)](std::string_view name) -> std::optional<std::string> {
    const auto it = table.find(name);
    if (it == table.end() || it->second.empty())
      return std::nullopt;
    return it->second;
  };
}

std::optional<long> integer_variable(const Environment& env, std::string_view name, long limit) {
  const std::optional<std::string> text = env(name);
  if (!text)
    return std::nullopt;
  long value = -1;
  const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || end != text->data() + text->size() || value < 0 || value >= limit) {
    throw replicator::InputError(fmt::format(
        "{}='{}' is not a number between 0 and {}: is the launcher's environment intact?", name,
        *text, limit - 1));
  }
  return value;
}

}  // namespace imgcast::cli::launch
