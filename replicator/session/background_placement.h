// BackgroundPlacement: a node's placement of its verified copy (placement.h, tree_placement.h),
// run on a thread of its own. Placing can take seconds: an fsync of a file's tail on a slow disk,
// and for a tree, every file written and a syncfs (9.5 s for 20,000 small files on a disk here).
// On the event loop's thread that would stop the node serving the children still waiting for its
// last chunks, and on the root it would hold back the Finish every agent waits for; so the loop
// goes on and looks at done() each turn.
//
// The work may read the staged copy's mapping (the children are served from the same bytes, only
// read) and commits or removes its files; nothing else may touch the StagedImage until done().
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <thread>

namespace imgcast::replicator {

class BackgroundPlacement {
 public:
  explicit BackgroundPlacement(std::function<void()> work);
  ~BackgroundPlacement();  // waits for the work: nothing it touches may go first
  BackgroundPlacement(const BackgroundPlacement&) = delete;
  BackgroundPlacement& operator=(const BackgroundPlacement&) = delete;

  // The work has ended, well or not.
  bool done() const noexcept { return done_.load(std::memory_order_acquire); }
  // REQUIRES: done(). Throws what the work threw.
  void get() const;

 private:
  std::exception_ptr error_;
  std::atomic<bool> done_{false};
  std::thread thread_;  // last: it starts once the fields it writes exist
};

}  // namespace imgcast::replicator
