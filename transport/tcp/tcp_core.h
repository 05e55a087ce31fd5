// TcpCore: the state of one TCP Context that its regions, listeners and endpoints share.
// Each of them holds a shared_ptr to it, so the epoll set and the region registry outlive every
// object that refers to them, whatever order the owner destroys things in.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "transport/completion_queue.h"
#include "transport/context.h"
#include "transport/memory_region.h"
#include "transport/tcp/tcp_options.h"
#include "transport/unique_fd.h"

namespace imgcast::transport::tcp {

// Something in the epoll set. epoll_event.data.ptr points at one.
class EpollHandler {
 public:
  virtual ~EpollHandler() = default;
  virtual void on_events(std::uint32_t events) = 0;
};

// A registered region as the receive path needs it.
struct RegisteredRegion {
  std::span<std::byte> bytes;
  std::uint64_t write_key;
  bool remote_write;
  const MemoryRegion* owner;  // its grants (allow_writer); erased from here before it goes
  int file = -1;              // the file `bytes` maps: payloads are spliced into it (or -1)
};

struct TcpCore {
  TcpCore(const ContextOptions& o, const TcpOptions& t);

  ContextOptions options;
  TcpOptions tcp_options;
  UniqueFd epoll;
  // Events produced outside poll() or by handlers; poll() hands them out. Nothing completes
  // inline: even a write that left at once is reported by the next poll(). Its wake-up fd is in
  // the epoll set (data.ptr == nullptr), so wait_fd() turns readable when a completion is queued
  // outside poll() (a send that left at once inside post_write); poll() drains it when epoll
  // reports it.
  CompletionQueue queue;
  std::unordered_map<std::uint32_t, RegisteredRegion> regions;
  std::uint32_t next_region_id = 1;
};

// 64 bits from the kernel's CSPRNG (getrandom).
std::uint64_t random_u64();

}  // namespace imgcast::transport::tcp
