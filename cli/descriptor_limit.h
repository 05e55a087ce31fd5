// The soft RLIMIT_NOFILE is often 1,024 while the hard limit is far higher: a root serving
// thousands of agents needs one descriptor each, so every subcommand starts at the hard limit.
#pragma once

namespace imgcast::cli {

// Raises the soft descriptor limit to the hard one; a failure only leaves the limit as it was
// (the root's own check, descriptor_budget.h, then says what the job needs).
void raise_descriptor_limit() noexcept;

}  // namespace imgcast::cli
