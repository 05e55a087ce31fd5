// libFuzzer target: the tree manifest decoder and the tree stream parser. Property: whatever
// decodes re-encodes to exactly the input, and passes validation (no lenient parsing, no
// ignored bytes, no manifest a writer could be tricked by).
#include <cstdlib>
#include <vector>

#include "replicator/errors.h"
#include "replicator/tree/manifest.h"
#include "replicator/tree/stream_layout.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace r = imgcast::replicator;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  // Tight limits so the fuzzer reaches them; default ones for the rest.
  const r::ManifestLimits tight{.max_entries = 64, .max_path_bytes = 64, .max_name_bytes = 16,
                                .max_target_bytes = 32, .max_depth = 4, .max_data_bytes = 4096};
  for (const r::ManifestLimits& limits : {tight, r::ManifestLimits{}}) {
    const r::DecodedManifest decoded = r::decode_manifest(in, limits);
    if (decoded.manifest) {
      if (!r::validate_manifest(*decoded.manifest, limits).empty()) std::abort();
      const std::vector<std::byte> out = r::encode_manifest(*decoded.manifest, limits);
      if (out.size() != size || !std::equal(out.begin(), out.end(), in.begin())) std::abort();
    } else if (decoded.refusal.empty()) {
      std::abort();  // a refusal always says why
    }
  }
  try {
    (void)r::parse_tree_stream(in, tight);
  } catch (const r::SecurityError&) {
  }
  return 0;
}
