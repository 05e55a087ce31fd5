// CompletionQueue: the completions one Context has produced but poll() has not handed out yet,
// and the wake-up eventfd that makes the Context's wait_fd() readable while there are some.
// Every backend's core holds one (TCP, UCX and verbs all queue the same way); the backend adds
// wakeup_fd() to its own epoll set and decides when poll() drains it.
//
// Threads: the thread that owns the Context, alone (completion.h). Nothing completes inline:
// complete() only queues, and the owner's next poll() hands the completion out.
#pragma once

#include <vector>

#include "transport/completion.h"
#include "transport/endpoint.h"  // a queued PeerAccepted owns its endpoint
#include "transport/unique_fd.h"

namespace imgcast::transport {

class CompletionQueue {
 public:
  CompletionQueue() = default;
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  // Creates the wake-up eventfd (non-blocking, close-on-exec). False, with errno set, when the
  // kernel refuses one: the owner reports it with its own set-up error, as it does for the
  // epoll set the fd goes into.
  [[nodiscard]] bool open_wakeup();
  // -1 until open_wakeup() succeeded.
  int wakeup_fd() const noexcept { return wakeup_.get(); }

  bool empty() const noexcept { return ready_.empty(); }

  // Queues `completion` for the next poll(). The first one queued outside poll() signals the
  // wake-up fd, so a caller blocked on wait_fd() wakes (e.g. for a send that left at once
  // inside post_write); later ones find it signalled already.
  void complete(Completion completion);
  // Makes the wake-up fd readable unless poll() is running (it hands out what is queued before
  // it returns anyway). For work that needs the owner's next poll() without a completion yet
  // (UCX: a posted put that only worker progress moves).
  void signal();
  // Reads the wake-up fd back to quiet. Never blocks (the fd is non-blocking).
  void drain_wakeup();
  // Drops every queued completion that names `endpoint` (it is being destroyed: no completion
  // may outlive it).
  void forget(const Endpoint* endpoint);
  // Appends every queued completion to `out`, oldest first, and empties the queue.
  void take_all(std::vector<Completion>& out);

  // Set by the backend's poll() around the part in which complete() and signal() need not wake
  // anyone.
  void set_in_poll(bool in_poll) noexcept { in_poll_ = in_poll; }

 private:
  UniqueFd wakeup_;
  bool in_poll_ = false;
  std::vector<Completion> ready_;
};

}  // namespace imgcast::transport
