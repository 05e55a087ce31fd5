#include "transport/verbs/verbs_remote_region.h"

#include <fmt/format.h>

#include "transport/error.h"

namespace imgcast::transport::verbs {

VerbsRemoteRegion::VerbsRemoteRegion(const RegionDescriptor& descriptor) : descriptor_(descriptor) {
  if (descriptor.kind != Kind::kVerbs) {
    throw Error(
        StatusCode::kInvalidArgument,
        fmt::format("cannot import a {} region on a verbs endpoint", to_string(descriptor.kind)));
  }
  if (descriptor.base + descriptor.length < descriptor.base) {
    throw Error(StatusCode::kInvalidArgument, "verbs region descriptor wraps the address space");
  }
  std::optional<RegionKey> key = RegionKey::decode(descriptor.key, descriptor.length);
  if (!key) {
    throw Error(StatusCode::kInvalidArgument,
                fmt::format("malformed verbs region key ({} bytes for a {}-byte region)",
                            descriptor.key.size(), descriptor.length));
  }
  key_ = std::move(*key);
}

MrLayout VerbsRemoteRegion::layout() const noexcept {
  return {descriptor_.base, descriptor_.length, key_.segment_bytes, key_.keys};
}

}  // namespace imgcast::transport::verbs
