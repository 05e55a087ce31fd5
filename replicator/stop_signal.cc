#include "replicator/stop_signal.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace imgcast::replicator {

namespace {
volatile std::sig_atomic_t g_stop_signal = 0;

// A fixed table the handler can read without locks or allocation.
struct TemporarySlot {
  std::atomic<bool> active{false};
  int dir_fd = -1;
  char name[256] = {};
};
constexpr int kSlots = 8;
TemporarySlot g_slots[kSlots];

extern "C" void on_stop_signal(int sig) {
  g_stop_signal = sig;
  for (auto& slot : g_slots) {
    if (slot.active.exchange(false)) {
      ::unlinkat(slot.dir_fd, slot.name, 0);
    }
  }
}
}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocking poll returns EINTR and the loop sees the flag
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // A peer that vanishes must not kill us with SIGPIPE; the transport reports it instead.
  signal(SIGPIPE, SIG_IGN);
}

bool stop_requested() noexcept { return g_stop_signal != 0; }
int stop_signal() noexcept { return g_stop_signal; }

int register_temporary(int dir_fd, const std::string& name) noexcept {
  if (name.size() >= sizeof(TemporarySlot::name)) {
    return -1;
  }
  for (int i = 0; i < kSlots; ++i) {
    if (!g_slots[i].active.load()) {
      g_slots[i].dir_fd = dir_fd;
      std::memcpy(g_slots[i].name, name.c_str(), name.size() + 1);
      g_slots[i].active.store(true);  // published last: the handler sees a complete entry
      return i;
    }
  }
  return -1;
}

void unregister_temporary(int slot) noexcept {
  if (slot >= 0 && slot < kSlots) {
    g_slots[slot].active.store(false);
  }
}

}  // namespace imgcast::replicator
