// The transport conformance suite: contracts every backend keeps, written against the Context /
// Endpoint interface only. Each backend instantiates it with its own factory (TCP here; UCX and
// verbs add theirs). A backend that cannot run on this machine skips with the reason.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "transport/context.h"
#include "transport/factory.h"

namespace imgcast::transport::test {

struct Backend {
  std::string name;
  Kind kind;
  std::function<std::unique_ptr<Context>(const ContextOptions&)> make;
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
