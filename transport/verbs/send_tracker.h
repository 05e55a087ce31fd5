// SendTracker: send-queue accounting with selective signalling. Each WR posted to the SQ takes a
// slot; a slot is free again only when the NIC reports a completion for that WR or a later one
// (an RC send queue completes in order). Only signalled WRs produce a completion, so the
// tracker signals one WR in every `signal_every`, and always the last one that fits.
//   Pitfall handled here: with every WR unsignalled the SQ fills, ibv_post_send fails with
//   ENOMEM, and no completion ever arrives to free it. Signalling every Nth WR bounds the slots
//   held by unsignalled WRs; signalling the WR that takes the last free slot makes a full queue
//   always drain.
// Each WR may carry a Tag (a send buffer to free, a write to complete) handed back when a
// completion covers it. Pure bookkeeping: wr_id is the sequence number next() returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace imgcast::transport::verbs {

struct SendTag {
  enum class Kind : std::uint8_t { kNone, kBuffer, kWrite };
  Kind kind = Kind::kNone;
  std::uint32_t index = 0;  // send buffer or write slot
};

class SendTracker {
 public:
  // REQUIRES: capacity > 0, 0 < signal_every <= capacity.
  SendTracker(std::size_t capacity, std::size_t signal_every)
      : capacity_(capacity), signal_every_(signal_every) {}

  std::size_t free_slots() const noexcept { return capacity_ - outstanding_.size(); }

  struct Post {
    std::uint64_t wr_id;
    bool signaled;
  };
  // Takes a slot for one WR. `must_signal`: the caller needs its completion (a write's last WR).
  // REQUIRES: free_slots() > 0.
  Post next(SendTag tag, bool must_signal);
  // The WR with this wr_id completed: frees it and every earlier WR, appending their tags to
  // `freed` in posting order. An unknown or already retired wr_id frees nothing.
  void on_completion(std::uint64_t wr_id, std::vector<SendTag>& freed);
  // Every outstanding WR is gone (the QP failed and flushed): frees all, as on_completion.
  void retire_all(std::vector<SendTag>& freed);

 private:
  struct Entry {
    std::uint64_t wr_id;
    SendTag tag;
  };
  std::size_t capacity_;
  std::size_t signal_every_;
  std::size_t unsignaled_run_ = 0;
  std::uint64_t next_id_ = 1;
  std::deque<Entry> outstanding_;
};

}  // namespace imgcast::transport::verbs
