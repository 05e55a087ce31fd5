#include "replicator/session/event_loop.h"

#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <array>

#include "replicator/errors.h"
#include "replicator/stop_signal.h"

namespace imgcast::replicator {

namespace tp = transport;

namespace {

// Waits up to `timeout` until one of `fds` is readable (-1 is skipped). EINTR ends the wait
// early, which is what we want: the caller looks at its signal flag right after.
void wait_readable(std::span<const int> fds, std::chrono::milliseconds timeout) {
  std::array<pollfd, 3> set{};  // on the stack: once per turn
  const std::size_t count = std::min(fds.size(), set.size());
  for (std::size_t i = 0; i < count; ++i) {
    set[i] = pollfd{fds[i], POLLIN, 0};  // a negative fd is skipped by poll
  }
  // Its result needs no look: readiness is found out by polling the contexts, and EINTR is
  // handled by the signal check.
  (void)::poll(set.data(), count, static_cast<int>(timeout.count()));
}

// Every completion a context has now, without blocking.
void drain(tp::Context& context, std::vector<tp::Completion>& out) {
  const tp::Status status = context.poll(out, std::chrono::milliseconds(0));
  if (!status.is_ok()) {
    throw TransferError(fmt::format("the {} transport failed: {}", tp::to_string(context.kind()),
                                    status.to_string()));
  }
}

}  // namespace

EventLoop::EventLoop(tp::Context& control, DataChannel& data) : control_(control), data_(data) {}

bool EventLoop::turn(std::chrono::milliseconds timeout, Session& session) {
  if (stop_requested()) {
    session.on_stop(stop_signal());
    return false;
  }
  const int fds[] = {control_.wait_fd(), data_.context().wait_fd(), data_.wake_fd()};
  wait_readable(fds, std::min(timeout, may_sleep_));
  if (stop_requested()) {
    session.on_stop(stop_signal());
    return false;
  }
  control_events_.clear();
  drain(control_, control_events_);
  for (auto& event : control_events_) {
    session.on_control_event(event);
  }
  data_events_.clear();
  drain(data_.context(), data_events_);
  for (auto& event : data_events_) {
    data_.handle(event);
  }
  may_sleep_ = data_.after_batch(std::chrono::steady_clock::now());
  return !control_events_.empty() || !data_events_.empty();
}

}  // namespace imgcast::replicator
