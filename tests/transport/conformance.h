// The transport conformance suite (TransportTest, conformance_test.cc): contracts every backend
// keeps. The tests use the Context / Endpoint interface only; just the backend list names each
// backend's maker. It is instantiated once, in conformance_test.cc, over the backends of this
// test binary: tcp always, ucx and auto_ucx (--transport auto's fallback composite over UCX and
// TCP) when UCX is built in, verbs always. Each test first probes its
// backend and skips with the reason when it cannot run here (verbs not built in, or no RDMA
// device). The suite checks: control messages arrive whole and in order both ways; writes land
// at their offsets with imm and notice, one ok WriteDone each, before a control message posted
// after them; wait_fd() wakes for a completion due after post_write; nothing completes inline
// and poll() does not sleep on due work; a destroyed endpoint leaves no completions behind;
// post_write checks both ranges without overflow (and refuses a source not registered for
// reading); a full queue answers kBusy and drains; a vanished peer fails every pending write
// once, is reported once and stays failed; offsets beyond 4 GiB; a descriptor of another backend
// is refused; connecting to nobody fails naming the address; a second process receives 64 MiB
// (TCP only: UCX and verbs cannot be used in a forked child, and skip). Malformed descriptor
// bytes are codec_test.cc's; backend-specific behaviour is in tcp_context_test.cc,
// tcp_hostile_peer_test.cc and verbs/.
//
// This header holds what the transport tests share: the Backend parameter and the poll helpers.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>

#include "transport/context.h"
#include "transport/factory.h"

namespace imgcast::transport::test {

struct Backend {
  std::string name;
  Kind kind;
  std::function<std::unique_ptr<Context>(const ContextOptions&)> make;
  // The readable name errors give a listen address; null: the address bytes are that text.
  std::function<std::string(std::span<const std::byte>)> address_name;
};

// So a failing test names its backend instead of dumping the struct's bytes.
inline void PrintTo(const Backend& backend, std::ostream* out) { *out << backend.name; }

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param.name;
}

// Polls `context` until `done` says so or `timeout` passes; every completion goes to `seen`.
bool poll_until(Context& context, std::vector<Completion>& seen, const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Polls two contexts in turn (a sender and a receiver living in one thread).
bool poll_both_until(Context& a, std::vector<Completion>& seen_a, Context& b,
                     std::vector<Completion>& seen_b, const std::function<bool()>& done,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));

template <typename T>
std::vector<T*> all_of(std::vector<Completion>& seen) {
  std::vector<T*> out;
  for (auto& c : seen) {
    if (auto* e = std::get_if<T>(&c))
      out.push_back(e);
  }
  return out;
}

}  // namespace imgcast::transport::test
