// CompletionQueue, the one queue every backend's core holds: when its wake-up fd turns readable
// (first completion queued outside poll(), or signal()), when not (inside poll()), and that
// take_all() and forget() keep the order of what stays.
#include "transport/completion_queue.h"

#include <gtest/gtest.h>
#include <poll.h>

namespace imgcast::transport::test {
namespace {

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

std::uint64_t cookie_of(const Completion& c) { return std::get<WriteDone>(c).cookie; }

TEST(CompletionQueue, FirstCompletionOutsidePollWakesAndDrainQuietsIt) {
  CompletionQueue queue;
  ASSERT_TRUE(queue.open_wakeup());
  EXPECT_FALSE(readable(queue.wakeup_fd()));
  queue.complete(WriteDone{nullptr, 1, Status::ok()});
  EXPECT_TRUE(readable(queue.wakeup_fd()));
  queue.drain_wakeup();
  EXPECT_FALSE(readable(queue.wakeup_fd()));
  // The queue is not empty: a second completion finds the waiter woken already.
  queue.complete(WriteDone{nullptr, 2, Status::ok()});
  EXPECT_FALSE(readable(queue.wakeup_fd()));
  queue.drain_wakeup();  // quiet already: must not block
}

TEST(CompletionQueue, InsidePollNothingWakes) {
  CompletionQueue queue;
  ASSERT_TRUE(queue.open_wakeup());
  queue.set_in_poll(true);
  queue.complete(WriteDone{nullptr, 1, Status::ok()});
  queue.signal();
  EXPECT_FALSE(readable(queue.wakeup_fd()));
  queue.set_in_poll(false);
  queue.signal();
  EXPECT_TRUE(readable(queue.wakeup_fd()));
}

TEST(CompletionQueue, TakeAllAppendsInOrderAndForgetDropsOnlyThatEndpoint) {
  CompletionQueue queue;
  ASSERT_TRUE(queue.open_wakeup());
  // Only compared, never dereferenced.
  auto* gone = reinterpret_cast<Endpoint*>(std::uintptr_t{0x10});
  auto* kept = reinterpret_cast<Endpoint*>(std::uintptr_t{0x20});
  queue.complete(WriteDone{kept, 1, Status::ok()});
  queue.complete(WriteDone{gone, 2, Status::ok()});
  queue.complete(WriteDone{kept, 3, Status::ok()});
  queue.forget(gone);
  std::vector<Completion> out;
  out.push_back(WriteDone{kept, 0, Status::ok()});  // take_all appends
  queue.take_all(out);
  EXPECT_TRUE(queue.empty());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(cookie_of(out[0]), 0u);
  EXPECT_EQ(cookie_of(out[1]), 1u);
  EXPECT_EQ(cookie_of(out[2]), 3u);
}

}  // namespace
}  // namespace imgcast::transport::test
