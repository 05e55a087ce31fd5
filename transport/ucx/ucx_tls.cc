#include "transport/ucx/ucx_tls.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <vector>

namespace imgcast::transport::ucx {

namespace {

// UCX 1.13 transport and alias names that carry imgcast's connections: tcp, and the InfiniBand
// and RoCE families (an RC/DC/UD lane supports peer-failure handling and RDMA puts).
constexpr std::string_view kCarriers[] = {
    "all",  "tcp",     "ib", "rc",   "rc_v", "rc_x",     "rc_verbs", "rc_mlx5", "dc",
    "dc_x", "dc_mlx5", "ud", "ud_v", "ud_x", "ud_verbs", "ud_mlx5",  "mlx5"};

std::vector<std::string_view> split(std::string_view list) {
  std::vector<std::string_view> out;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    if (!item.empty())
      out.push_back(item);
    if (comma == std::string_view::npos)
      break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

bool is_carrier(std::string_view name) {
  return std::find(std::begin(kCarriers), std::end(kCarriers), name) != std::end(kCarriers);
}

}  // namespace

TlsCheck check_tls(const char* tls, bool rdma_device) {
  TlsCheck check;
  if (tls == nullptr || *tls == '\0')
    return check;  // unset: every transport, tcp included
  std::string_view list = tls;
  const bool exclude = list.front() == '^';
  if (exclude)
    list.remove_prefix(1);
  const std::vector<std::string_view> names = split(list);
  const bool names_tcp = std::find(names.begin(), names.end(), "tcp") != names.end() ||
                         std::find(names.begin(), names.end(), "all") != names.end();
  if (exclude) {
    check.tcp = !names_tcp;
    if (names_tcp && !rdma_device) {
      check.problem = fmt::format(
          "UCX_TLS={} leaves UCX no transport that connects imgcast nodes here: tcp is excluded "
          "and this host has no RDMA device (shared memory alone cannot carry imgcast's data "
          "with UCX; see docs/rdma.md)",
          tls);
    }
    return check;
  }
  check.tcp = names_tcp;
  if (std::none_of(names.begin(), names.end(), is_carrier)) {
    check.problem = fmt::format(
        "UCX_TLS={} names no transport that connects imgcast nodes: add tcp (or an RDMA "
        "transport: rc, dc, ud); shared memory (sm, posix, sysv, cma) cannot carry imgcast's data "
        "alone with UCX, see docs/rdma.md",
        tls);
  }
  return check;
}

}  // namespace imgcast::transport::ucx
