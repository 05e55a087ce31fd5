// SIGINT/SIGTERM turn into a flag the event loops check, so an interrupted transfer still runs
// its cleanup (temporary files removed, agents stopped) instead of dying mid-write.
//
// The handler also unlinks every registered temporary file itself (unlinkat is
// async-signal-safe): a process stuck in a blocking setup call (a connect, a large fallocate)
// that is then killed by its launcher leaves nothing behind.
#pragma once

#include <string>

namespace imgcast::replicator {

void install_stop_handlers();
bool stop_requested() noexcept;
int stop_signal() noexcept;  // the signal that asked, 0 if none

// Registers `name` in directory `dir_fd` for removal by the signal handler. Returns a slot for
// unregister_temporary, or -1 when all slots are taken (then only the normal cleanup applies).
int register_temporary(int dir_fd, const std::string& name) noexcept;
void unregister_temporary(int slot) noexcept;

}  // namespace imgcast::replicator
