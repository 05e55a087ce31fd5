#include "transport/verbs/device_spec.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>

#include "transport/error.h"

namespace imgcast::transport::verbs {

namespace {
bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 63)
    return false;
  for (const char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
      return false;
  }
  return name != "." && name != "..";  // the name becomes a sysfs path component
}
}  // namespace

std::optional<DeviceSpec> DeviceSpec::parse(std::string_view text) {
  DeviceSpec spec;
  const std::size_t colon = text.find(':');
  spec.device = std::string(text.substr(0, colon));
  if (!valid_name(spec.device))
    return std::nullopt;
  if (colon == std::string_view::npos)
    return spec;
  const std::string_view port = text.substr(colon + 1);
  unsigned value = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || port.size() > 3 || error != std::errc() || end != port.data() + port.size() ||
      value < 1 || value > 255) {
    return std::nullopt;
  }
  spec.port = static_cast<std::uint8_t>(value);
  return spec;
}

std::string DeviceSpec::to_string() const {
  if (device.empty())
    return "any device";
  return port == 0 ? device : fmt::format("{}:{}", device, port);
}

DeviceSpec device_spec_from_environment() {
  const char* value = std::getenv(kDeviceEnvironmentVariable);
  if (value == nullptr || *value == '\0')
    return {};
  std::optional<DeviceSpec> spec = DeviceSpec::parse(value);
  if (!spec) {
    throw Error(StatusCode::kInvalidArgument,
                fmt::format("{}='{}' is not DEVICE or DEVICE:PORT (e.g. mlx5_0:1)",
                            kDeviceEnvironmentVariable, value));
  }
  return *spec;
}

int device_numa_node(std::string_view device, const std::filesystem::path& sysfs) {
  if (!valid_name(device))
    return -1;
  std::ifstream in(sysfs / "class" / "infiniband" / std::string(device) / "device" / "numa_node");
  std::string text;
  if (!(in >> text))
    return -1;
  int node = -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), node);
  if (error != std::errc() || end != text.data() + text.size() || node < 0 || node > 4095)
    return -1;
  return node;
}

}  // namespace imgcast::transport::verbs
