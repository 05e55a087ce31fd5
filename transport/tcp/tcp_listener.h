// TcpListener: a listening socket in the context's epoll set; each accepted connection becomes
// a TcpEndpoint delivered as a PeerAccepted completion.
//
// Out of file descriptors or kernel memory (accept4: EMFILE, ENFILE, ENOBUFS, ENOMEM), the
// pending connection stays in the backlog and the socket stays readable: level-triggered epoll
// would report it again at once and the node would spin. So the listener leaves the epoll set
// for kPause and comes back when a timerfd (in the same set, so a caller blocked on wait_fd()
// wakes for it too) fires; meanwhile the owner frees descriptors (Admission drops the unproven).
// It says so in at most one line per kPauseLogEvery, counting the accepts it deferred.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "transport/context.h"
#include "transport/log_rate_limit.h"
#include "transport/tcp/tcp_core.h"

namespace imgcast::transport::tcp {

class TcpListener final : public Listener, public EpollHandler {
 public:
  static constexpr std::chrono::milliseconds kPause{100};
  static constexpr std::chrono::seconds kPauseLogEvery{10};

  // Throws Error when it cannot resolve, bind or listen.
  TcpListener(std::shared_ptr<TcpCore> core, const ListenOptions& options);
  ~TcpListener() override;

  std::span<const std::byte> address() const noexcept override { return address_; }
  std::string name() const override { return name_; }
  void on_events(std::uint32_t events) override;

 private:
  // The timerfd's handler: its own object, as epoll_event.data.ptr tells handlers apart.
  struct ResumeTimer final : EpollHandler {
    explicit ResumeTimer(TcpListener& l) : listener(l) {}
    void on_events(std::uint32_t /*events*/) override { listener.resume(); }
    TcpListener& listener;
  };

  // Stops accepting for kPause after accept4 failed with `error` for want of resources.
  void pause(int error);
  void resume();
  bool arm_timer() const noexcept;

  std::shared_ptr<TcpCore> core_;
  UniqueFd socket_;
  // Made with the listener, not when descriptors have run out (then it could not be made).
  UniqueFd timer_;
  ResumeTimer resume_timer_{*this};
  bool paused_ = false;
  std::uint64_t deferred_ = 0;  // accepts deferred since the last line that said so
  LogRateLimit pause_log_{1, kPauseLogEvery};
  std::string name_;
  std::vector<std::byte> address_;
};

}  // namespace imgcast::transport::tcp
