// FallbackContext's event side: poll() over both inner contexts, the translation of their
// completions to the outer objects, and a probation link's move to TCP.
#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>

#include "transport/error.h"
#include "transport/fallback/fallback_context.h"
#include "transport/fallback/fallback_endpoint.h"
#include "transport/fallback/fallback_listener.h"

namespace imgcast::transport::fallback {

using Clock = std::chrono::steady_clock;

Status FallbackContext::poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) {
  queue_.set_in_poll(true);
  queue_.drain_wakeup();
  // An inner context that already signalled work (UCX: a put posted since its last poll, which
  // only progress moves) gets this poll's one round without a sleep, as it would alone: its
  // poll(0) below consumes that signal, and the put's completion may need no event of ours.
  std::array<epoll_event, 4> events{};
  const bool signalled = ::epoll_wait(epoll_.get(), events.data(), events.size(), 0) > 0;
  Status status = collect(*tcp_);
  if (status.is_ok() && rdma_)
    status = collect(*rdma_);
  if (status.is_ok() && queue_.empty() && !signalled && timeout.count() > 0) {
    // Wake no later than the earliest probation deadline (the timer fd says so too, for owners
    // that wait on wait_fd() themselves).
    const long long ms = std::min<long long>(timeout.count(), INT_MAX);
    const int n = ::epoll_wait(epoll_.get(), events.data(), events.size(), static_cast<int>(ms));
    if (n < 0 && errno != EINTR) {
      status = Status(StatusCode::kIoError, fmt::format("epoll_wait: {}", std::strerror(errno)));
    }
    if (status.is_ok())
      status = collect(*tcp_);
    if (status.is_ok() && rdma_)
      status = collect(*rdma_);
  }
  std::uint64_t expirations = 0;
  // A timer that has not fired reads EAGAIN: nothing to drain, and the deadlines say the rest.
  (void)!::read(timer_.get(), &expirations, sizeof expirations);
  expire_probations(Clock::now());
  arm_timer();
  retired_.clear();
  queue_.take_all(out);
  queue_.set_in_poll(false);
  return status;
}

Status FallbackContext::collect(Context& inner) {
  batch_.clear();
  IMGCAST_RETURN_IF_ERROR(inner.poll(batch_, std::chrono::milliseconds(0)));
  const bool from_rdma = &inner == rdma_.get();
  for (Completion& completion : batch_) {
    translate(completion, from_rdma);
  }
  batch_.clear();
  return Status::ok();
}

void FallbackContext::translate(Completion& completion, bool from_rdma) {
  const auto outer_of = [this](const Endpoint* inner) -> FallbackEndpoint* {
    const auto it = links_.find(inner);
    return it == links_.end() ? nullptr : it->second;
  };
  std::visit(
      [&](auto& event) {
        using T = std::decay_t<decltype(event)>;
        if constexpr (std::is_same_v<T, PeerAccepted>) {
          accept(event, from_rdma);
        } else if constexpr (std::is_same_v<T, WriteDone>) {
          // A write ends probation (FallbackEndpoint::do_post_write), so it is never moved.
          if (FallbackEndpoint* link = outer_of(event.endpoint))
            queue_.complete(WriteDone{link, event.cookie, std::move(event.status)});
        } else if constexpr (std::is_same_v<T, WriteArrived>) {
          if (FallbackEndpoint* link = outer_of(event.from)) {
            link->end_probation();
            queue_.complete(WriteArrived{link, event.imm, event.length, event.notice});
          }
        } else if constexpr (std::is_same_v<T, ControlArrived>) {
          if (FallbackEndpoint* link = outer_of(event.from)) {
            link->end_probation();  // the peer's first message: this link is on its backend
            queue_.complete(ControlArrived{link, std::move(event.bytes)});
          }
        } else if constexpr (std::is_same_v<T, PeerFailed>) {
          FallbackEndpoint* link = outer_of(event.peer);
          if (link != nullptr && link->on_probation()) {
            move_to_tcp(*link, event.status.to_string());
          } else if (link != nullptr) {
            queue_.complete(PeerFailed{link, std::move(event.status)});
          }
        }
        // A completion naming an endpoint that left RDMA (or is being destroyed) is dropped.
      },
      completion);
}

void FallbackContext::accept(PeerAccepted& accepted, bool from_rdma) {
  const auto it = listeners_.find(accepted.listener);
  if (it == listeners_.end() || (from_rdma && !rdma_usable_)) {
    // Refused by destroying it (after this batch): a peer on probation moves to TCP when its
    // end fails, or at its first-contact deadline.
    retired_.push_back(std::move(accepted.endpoint));
    return;
  }
  auto link = std::make_unique<FallbackEndpoint>(*this, std::move(accepted.endpoint));
  queue_.complete(PeerAccepted{it->second, std::move(link)});
}

void FallbackContext::move_to_tcp(FallbackEndpoint& link, const std::string& reason) {
  const std::string peer = link.peer_name();
  auto [rdma_endpoint, probation] = link.leave_rdma();
  // Freed at the end of this poll: completions still in the batch may name it.
  retired_.push_back(std::move(rdma_endpoint));
  log_link_fallback(peer, reason);
  try {
    link.adopt(tcp_->connect(probation.tcp_address, probation.connect_timeout));
  } catch (const Error& error) {
    link.fail(error.status());
    queue_.complete(PeerFailed{&link, error.status()});
    return;
  }
  // The handshake's opening again, in order, now over TCP.
  for (const auto& message : probation.sent) {
    if (Status status = link.inner()->send_control(message); !status.is_ok()) {
      queue_.complete(PeerFailed{&link, std::move(status)});
      return;
    }
  }
}

void FallbackContext::expire_probations(Clock::time_point now) {
  std::vector<FallbackEndpoint*> late;
  for (const auto& [inner, link] : links_) {
    if (link->on_probation() && link->probation()->deadline <= now)
      late.push_back(link);
  }
  for (FallbackEndpoint* link : late) {
    move_to_tcp(*link, fmt::format("no answer within {:.1f} s",
                                   static_cast<double>(first_contact_.count()) / 1000));
  }
}

void FallbackContext::arm_timer() {
  std::optional<Clock::time_point> earliest;
  for (const auto& [inner, link] : links_) {
    if (link->on_probation() && (!earliest || link->probation()->deadline < *earliest))
      earliest = link->probation()->deadline;
  }
  itimerspec spec{};  // all zero: disarmed
  if (earliest) {
    const auto left =
        std::max<Clock::duration>(*earliest - Clock::now(), std::chrono::microseconds(1));
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    spec.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  }
  // Cannot fail with these arguments; were it to, the deadlines still run at the next poll.
  (void)::timerfd_settime(timer_.get(), 0, &spec, nullptr);
}

}  // namespace imgcast::transport::fallback
