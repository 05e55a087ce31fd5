// libFuzzer target: the node cache's entry record (entries/DIGEST.json). The file is ours, but
// it is read back on every lookup and must never be trusted in part. Property: whatever decodes
// re-encodes to a record that decodes to itself, and keeps every bound.
#include <cstdlib>
#include <string_view>

#include "replicator/cache/entry_record.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace r = imgcast::replicator;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto record = r::EntryRecord::decode(text);
  if (record) {
    if (record->sources.size() > r::kMaxEntrySources) std::abort();
    for (const auto& source : record->sources) {
      if (source.key.size() != 16 || source.path.size() > 4096) std::abort();
    }
    const auto again = r::EntryRecord::decode(record->encode());
    if (!again || !(*again == *record)) std::abort();
  }
  return 0;
}
