#include "transport/completion_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace imgcast::transport {

bool CompletionQueue::open_wakeup() {
  wakeup_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  return wakeup_.valid();
}

void CompletionQueue::complete(Completion completion) {
  if (ready_.empty())
    signal();
  ready_.push_back(std::move(completion));
}

void CompletionQueue::signal() {
  if (!in_poll_) {
    const std::uint64_t one = 1;
    // Fails only when the counter is saturated, and then the fd is readable anyway.
    (void)!::write(wakeup_.get(), &one, sizeof one);
  }
}

void CompletionQueue::drain_wakeup() {
  std::uint64_t count = 0;
  // EAGAIN when nobody signalled since the last drain: already quiet.
  (void)!::read(wakeup_.get(), &count, sizeof count);
}

void CompletionQueue::forget(const Endpoint* endpoint) { forget_completions(ready_, endpoint); }

void CompletionQueue::take_all(std::vector<Completion>& out) {
  for (auto& completion : ready_)
    out.push_back(std::move(completion));
  ready_.clear();
}

}  // namespace imgcast::transport
