// Keeping the job key inside the process that holds it: out of /proc/PID/environ, out of core
// dumps, away from the user's other processes' ptrace. docs/security.md, "Secrets".
#pragma once

#include <optional>
#include <string>

namespace imgcast::cli {

// The value of environment variable `name`, taken out of the environment: its bytes are
// overwritten where they lie (for a variable srun or mpirun passed, that is the initial block
// /proc/PID/environ shows, which unsetenv alone leaves intact), then it is unset, so nothing
// this process starts inherits it. nullopt when it is not set.
std::optional<std::string> take_from_environment(const char* name);

// While this process holds a key: no core dump (RLIMIT_CORE soft limit 0) and not dumpable
// (PR_SET_DUMPABLE 0: no core even through a core_pattern pipe, no ptrace or /proc/PID/mem by
// the user's other processes). The UCX backend makes the process dumpable again: its
// shared-memory transports need that (transport/ucx/ucx_context.cc).
void keep_key_out_of_dumps();

// Before exec of the user's command: the core limit it would have had (dumpability returns by
// itself at exec).
void restore_core_limit();

}  // namespace imgcast::cli
