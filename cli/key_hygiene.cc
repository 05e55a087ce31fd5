#include "cli/key_hygiene.h"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>

namespace imgcast::cli {

namespace {

// The soft core limit before keep_key_out_of_dumps(), for the user's command.
std::optional<rlim_t> saved_core_limit;

}  // namespace

std::optional<std::string> take_from_environment(const char* name) {
  char* value = std::getenv(name);
  if (value == nullptr) {
    return std::nullopt;
  }
  std::string copy = value;
  // explicit_bzero: a store the compiler may not drop because nobody reads it afterwards.
  ::explicit_bzero(value, std::strlen(value));
  ::unsetenv(name);
  return copy;
}

void keep_key_out_of_dumps() {
  rlimit core{};
  if (::getrlimit(RLIMIT_CORE, &core) == 0) {
    saved_core_limit = core.rlim_cur;
    core.rlim_cur = 0;  // the hard limit stays: the user's command gets its own limit back
    // Lowering a soft limit cannot fail; dumpable below covers it if it ever did.
    (void)::setrlimit(RLIMIT_CORE, &core);
  }
  // Fails only for an invalid argument; logging is not set up yet this early.
  (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

void restore_core_limit() {
  rlimit core{};
  if (saved_core_limit && ::getrlimit(RLIMIT_CORE, &core) == 0) {
    core.rlim_cur = *saved_core_limit;
    // Not checked: it only returns to what it was, under the hard limit we never lowered.
    (void)::setrlimit(RLIMIT_CORE, &core);
  }
}

}  // namespace imgcast::cli
