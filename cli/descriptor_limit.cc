#include "cli/descriptor_limit.h"

#include <sys/resource.h>

namespace imgcast::cli {

void raise_descriptor_limit() noexcept {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) {
    return;
  }
  limit.rlim_cur = limit.rlim_max;
  // select() is not used anywhere (epoll), so descriptors above 1,024 are safe to hand out.
  (void)::setrlimit(RLIMIT_NOFILE, &limit);
}

}  // namespace imgcast::cli
