// ResultOutput: standard output for the command's result alone. A library the command loads may
// print there on its own: UCX writes its warnings to stdout ("UCX WARN unused env variable ..."),
// and it reads UCX_LOG_FILE when it loads, before main could point it elsewhere; an agent's stdout
// reaches the root's through ssh. One stray line and `--json` no longer parses. So while the
// command runs, file descriptor 1 is stderr (such lines still show, beside the log), and the
// result is written to the real stdout, kept aside.
#pragma once

#include <string_view>

#include "replicator/unique_fd.h"

namespace imgcast::cli {

class ResultOutput {
 public:
  ResultOutput();   // keeps stdout aside and points descriptor 1 at stderr
  ~ResultOutput();  // puts stdout back
  ResultOutput(const ResultOutput&) = delete;
  ResultOutput& operator=(const ResultOutput&) = delete;

  // To the real stdout, whole (a failed write is the reader's loss: there is nobody else to tell
  // but stderr, which says it).
  void write(std::string_view text) const;

 private:
  replicator::UniqueFd saved_;
};

// For a command with no result of its own (the agent): whatever anything prints to stdout goes to
// stderr instead, for good.
void send_stdout_to_stderr();

}  // namespace imgcast::cli
