// EventLoop: the one loop the root and every agent run. One turn waits (poll(2), never spinning)
// until the control Context, the data Context or the root's reading thread has work, hands every
// control completion to the session, every data completion to the node's DataChannel (admission
// before the plan, the DataNode after it), then lets the channel serve newly admitted children
// and pump its node. A connection that comes early or late meets the same code on every node.
//
// A stop signal (SIGINT, SIGTERM: stop_signal.h) ends the wait at once; the session is told
// before the turn does anything else.
//
// Owned and driven by the session's thread, which owns both Contexts.
#pragma once

#include <chrono>
#include <vector>

#include "replicator/pipeline/data_channel.h"
#include "transport/completion.h"
#include "transport/context.h"

namespace imgcast::replicator {

class EventLoop {
 public:
  class Session {
   public:
    virtual ~Session() = default;
    // A completion of the control Context.
    virtual void on_control_event(transport::Completion& event) = 0;
    // A stop signal came; the turn ends after this returns.
    virtual void on_stop(int signal) = 0;
  };

  // REQUIRES: both outlive the loop.
  EventLoop(transport::Context& control, DataChannel& data);

  // One turn: waits up to `timeout` (less when the node has work sooner), then dispatches.
  // Returns whether any completion came. Throws TransferError when a Context itself breaks.
  bool turn(std::chrono::milliseconds timeout, Session& session);
  // The next turn does not wait: the session gave the node work outside a turn (the root's
  // source at the start of the transfer), which only a pump can start.
  void hurry() noexcept { may_sleep_ = std::chrono::milliseconds(0); }

 private:
  transport::Context& control_;
  DataChannel& data_;
  // Reused every turn: the root turns once per chunk or so.
  std::vector<transport::Completion> control_events_;
  std::vector<transport::Completion> data_events_;
  std::chrono::milliseconds may_sleep_{0};  // what the node's last pump allows
};

}  // namespace imgcast::replicator
