#include "transport/verbs/write_plan.h"

#include <algorithm>

namespace imgcast::transport::verbs {

void plan_write(const MrLayout& source, std::uint64_t source_offset, const MrLayout& target,
                std::uint64_t target_offset, std::uint32_t length, std::uint32_t max_piece,
                std::vector<WrPiece>& out) {
  std::uint64_t done = 0;
  while (done < length) {
    const std::uint64_t s = source_offset + done;
    const std::uint64_t t = target_offset + done;
    const std::uint64_t s_segment = s / source.segment_bytes;
    const std::uint64_t t_segment = t / target.segment_bytes;
    // Bytes left before the next boundary on each side: no WR may span two MRs.
    const std::uint64_t s_room = (s_segment + 1) * source.segment_bytes - s;
    const std::uint64_t t_room = (t_segment + 1) * target.segment_bytes - t;
    const std::uint64_t n =
        std::min({std::uint64_t{length} - done, s_room, t_room, std::uint64_t{max_piece}});
    out.push_back(WrPiece{source.base + s, source.keys[s_segment], target.base + t,
                          target.keys[t_segment], static_cast<std::uint32_t>(n)});
    done += n;
  }
}

}  // namespace imgcast::transport::verbs
