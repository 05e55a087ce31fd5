// Kind: which backend carries the bytes. The replicator never branches on it; only the
// factory and the reports do.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace imgcast::transport {

enum class Kind : std::uint8_t { kTcp = 1, kUcx = 2, kVerbs = 3 };

std::string_view to_string(Kind kind) noexcept;
// "tcp", "ucx", "verbs" -> Kind; anything else -> nullopt.
std::optional<Kind> parse_kind(std::string_view name) noexcept;

}  // namespace imgcast::transport
