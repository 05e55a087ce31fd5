#include "transport/verbs/send_tracker.h"

namespace imgcast::transport::verbs {

SendTracker::Post SendTracker::next(SendTag tag, bool must_signal) {
  const bool last_slot = outstanding_.size() + 1 == capacity_;
  const bool signaled = must_signal || last_slot || unsignaled_run_ + 1 >= signal_every_;
  unsignaled_run_ = signaled ? 0 : unsignaled_run_ + 1;
  const std::uint64_t id = next_id_++;
  outstanding_.push_back({id, tag});
  return {id, signaled};
}

void SendTracker::on_completion(std::uint64_t wr_id, std::vector<SendTag>& freed) {
  while (!outstanding_.empty() && outstanding_.front().wr_id <= wr_id) {
    freed.push_back(outstanding_.front().tag);
    outstanding_.pop_front();
  }
}

void SendTracker::retire_all(std::vector<SendTag>& freed) {
  for (const Entry& e : outstanding_) {
    freed.push_back(e.tag);
  }
  outstanding_.clear();
  unsignaled_run_ = 0;
}

}  // namespace imgcast::transport::verbs
