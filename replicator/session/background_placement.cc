#include "replicator/session/background_placement.h"

#include <utility>

namespace imgcast::replicator {

BackgroundPlacement::BackgroundPlacement(std::function<void()> work)
    : thread_([this, work = std::move(work)] {
        try {
          work();
        } catch (...) {
          error_ = std::current_exception();  // published by done_'s release below
        }
        done_.store(true, std::memory_order_release);
      }) {}

BackgroundPlacement::~BackgroundPlacement() { thread_.join(); }

void BackgroundPlacement::get() const {
  if (error_) {
    std::rethrow_exception(error_);
  }
}

}  // namespace imgcast::replicator
