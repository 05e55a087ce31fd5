#include "transport/kind.h"

namespace imgcast::transport {

std::string_view to_string(Kind kind) noexcept {
  switch (kind) {
    case Kind::kTcp:
      return "tcp";
    case Kind::kUcx:
      return "ucx";
    case Kind::kVerbs:
      return "verbs";
  }
  return "unknown";
}

std::optional<Kind> parse_kind(std::string_view name) noexcept {
  if (name == "tcp")
    return Kind::kTcp;
  if (name == "ucx")
    return Kind::kUcx;
  if (name == "verbs")
    return Kind::kVerbs;
  return std::nullopt;
}

}  // namespace imgcast::transport
