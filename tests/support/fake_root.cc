// fake_root VICTIM ADDRESS_FILE: a "root" without the job key, for the agent's side of
// authentication (tests/e2e/fake_root_test.cc). It listens on 127.0.0.1 through the real TCP
// transport, writes its control address to ADDRESS_FILE, and answers the first agent's Hello
// not with a Challenge but with the messages of a whole transfer, in the real wire format: a
// Probe and a Plan for a 0-byte image placed at VICTIM with mode 0666, the Finish digest of
// nothing, then Bye. An agent that acted on any of them would replace VICTIM. It prints what
// happened to stderr and exits 0 once the agent hung up (or after 30 s).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include "replicator/image/integrity.h"
#include "replicator/protocol/messages.h"
#include "transport/tcp/tcp_context.h"

namespace {

using namespace imgcast;
namespace tp = transport;
namespace rp = replicator;

std::vector<rp::Message> a_whole_transfer(const std::string& victim,
                                          std::span<const std::byte> own_address) {
  rp::Probe probe;
  probe.image_bytes = 0;
  probe.mode = 0666;
  probe.job_tag = "fake";
  probe.source_key = "0000000000000000";
  probe.destination = victim;
  rp::Plan plan;
  plan.image_bytes = 0;
  plan.chunk_bytes = 1 << 20;
  plan.job_size = 2;
  plan.mode = 0666;
  plan.data_rank = 1;
  plan.topology = "chain";
  plan.destination = victim;
  plan.job_tag = "fake";
  plan.parents.push_back({0, {own_address.begin(), own_address.end()}});
  rp::ImageHasher nothing;
  return {probe, plan, rp::Finish{nothing.digest()}, rp::Bye{}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fake_root VICTIM ADDRESS_FILE\n");
    return 2;
  }
  auto context = tp::tcp::make_tcp_context({});
  tp::ListenOptions listen;
  listen.bind_host = "127.0.0.1";
  auto listener = context->listen(listen);
  const auto address = listener->address();
  std::ofstream(argv[2]) << std::string(reinterpret_cast<const char*>(address.data()),
                                        address.size());
  std::unique_ptr<tp::Endpoint> agent;
  std::vector<tp::Completion> events;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    events.clear();
    (void)context->poll(events, std::chrono::milliseconds(100));
    for (auto& event : events) {
      if (auto* accepted = std::get_if<tp::PeerAccepted>(&event)) {
        agent = std::move(accepted->endpoint);
        std::fprintf(stderr, "fake root: an agent connected\n");
      } else if (auto* arrived = std::get_if<tp::ControlArrived>(&event)) {
        const auto message = rp::decode(arrived->bytes);
        std::fprintf(stderr, "fake root: got %s\n",
                     message ? rp::message_name(*message) : "a malformed message");
        if (message && std::holds_alternative<rp::Hello>(*message)) {
          for (const rp::Message& m : a_whole_transfer(argv[1], address)) {
            (void)agent->send_control(rp::encode(m));
          }
          std::fprintf(stderr, "fake root: sent Probe, Plan, Finish, Bye without a Challenge\n");
        }
      } else if (std::holds_alternative<tp::PeerFailed>(event)) {
        std::fprintf(stderr, "fake root: the agent hung up\n");
        return 0;
      }
    }
  }
  std::fprintf(stderr, "fake root: the agent never hung up\n");
  return 1;
}
