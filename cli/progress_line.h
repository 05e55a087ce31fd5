// ProgressLine: the one live line `imgcast replicate` shows on a terminal while data flows:
// bytes and percent over all hosts, aggregate and slowest-host rate, ETA, hosts done.
#pragma once

#include <iosfwd>
#include <string>

#include "replicator/session/replicate.h"

namespace imgcast::cli {

// The line's text for a snapshot (no terminal control characters).
std::string progress_text(const replicator::ProgressSnapshot& snapshot);

class ProgressLine {
 public:
  explicit ProgressLine(std::ostream& out) : out_(out) {}
  ~ProgressLine() { clear(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void update(const replicator::ProgressSnapshot& snapshot);  // redraws the line in place
  void clear();                                               // erases it (before the summary)

 private:
  std::ostream& out_;
  bool shown_ = false;
};

}  // namespace imgcast::cli
