// DeviceSpec: which RDMA device and port a verbs Context uses, from IMGCAST_RDMA_DEVICE
// ("mlx5_0:1", or "mlx5_0" for its first active port; unset: the first device with an active
// port). Also where the device sits: its NUMA node, read from sysfs, so buffers and the
// progress thread can live next to it. Pure parsing and file reading, testable without a device.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace imgcast::transport::verbs {

inline constexpr const char* kDeviceEnvironmentVariable = "IMGCAST_RDMA_DEVICE";

struct DeviceSpec {
  std::string device;     // e.g. "mlx5_0"; empty: any
  std::uint8_t port = 0;  // 1..255; 0: the first active port

  // nullopt unless `text` is NAME or NAME:PORT with NAME of 1..63 characters from
  // [A-Za-z0-9_.-] (what the kernel names devices) and PORT a decimal 1..255.
  static std::optional<DeviceSpec> parse(std::string_view text);
  std::string to_string() const;  // "mlx5_0:1", "mlx5_0", "any device"
};

// The spec from IMGCAST_RDMA_DEVICE (unset or empty: any device). Throws Error
// (kInvalidArgument) naming the variable when it is set but malformed.
DeviceSpec device_spec_from_environment();

// The NUMA node of RDMA device `device` from <sysfs>/class/infiniband/<device>/device/numa_node,
// or -1 when unknown (missing file, garbage, or the kernel's own -1 for "no affinity").
int device_numa_node(std::string_view device,
                     const std::filesystem::path& sysfs = std::filesystem::path("/sys"));

}  // namespace imgcast::transport::verbs
