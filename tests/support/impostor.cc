// impostor HOST:PORT JOB_ID_HEX: a peer without the job key knocking on a root's control port,
// through the real TCP transport. It tries (1) bytes that are no frame at all, (2) a Hello with
// a job id it made up, and (3) a Hello with the job's real id (job ids are not secret) claiming
// rank 1, answering the root's challenge with a made-up Proof. It prints one line per attempt:
// "refused" when the root closed the connection without ever sending a Plan, "ACCEPTED"
// otherwise. Exit 0 when every attempt was refused.
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <variant>

#include "replicator/protocol/auth.h"
#include "replicator/protocol/messages.h"
#include "transport/tcp/tcp_context.h"

namespace {

using namespace imgcast;
namespace tp = transport;

// Raw garbage on a plain socket: the root's frame decoder must refuse it.
bool garbage_refused(const std::string& address) {
  const auto colon = address.rfind(':');
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(address.substr(0, colon).c_str(), address.substr(colon + 1).c_str(), &hints,
                    &found) != 0)
    return false;
  const int fd = ::socket(found->ai_family, SOCK_STREAM, 0);
  const bool connected = ::connect(fd, found->ai_addr, found->ai_addrlen) == 0;
  ::freeaddrinfo(found);
  if (!connected)
    return false;
  const char junk[] = "GET / HTTP/1.0\r\n\r\n this is not an imgcast frame at all .........";
  (void)!::write(fd, junk, sizeof junk);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  char buffer[256];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);  // 0: closed by the root
  ::close(fd);
  return n == 0;
}

// A Hello (and, if challenged, a made-up Proof) through the real transport.
bool handshake_refused(const std::string& address, const replicator::JobId& job,
                       bool answer_challenge) {
  auto context = tp::tcp::make_tcp_context({});
  auto endpoint = context->connect(
      std::span(reinterpret_cast<const std::byte*>(address.data()), address.size()),
      std::chrono::seconds(5));
  replicator::Hello hello;
  hello.rank = 1;
  hello.job_id = job;
  hello.nonce = replicator::random_nonce();
  (void)endpoint->send_control(replicator::encode(hello));
  std::vector<tp::Completion> events;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    events.clear();
    (void)context->poll(events, std::chrono::milliseconds(100));
    for (auto& event : events) {
      if (std::holds_alternative<tp::PeerFailed>(event))
        return true;  // the root hung up on us
      if (auto* arrived = std::get_if<tp::ControlArrived>(&event)) {
        const auto message = replicator::decode(arrived->bytes);
        if (message && std::holds_alternative<replicator::Challenge>(*message) &&
            answer_challenge) {
          replicator::Proof proof;
          proof.mac[0] = std::byte{1};  // we do not hold the key
          (void)endpoint->send_control(replicator::encode(proof));
        } else if (message && std::holds_alternative<replicator::Plan>(*message)) {
          return false;
        }
      }
    }
  }
  return false;  // neither refused nor accepted in time: count as a failure of the root
}

}  // namespace

int main(int argc, char** argv) {
  replicator::JobId job{};
  if (argc != 3 || !replicator::parse_hex(argv[2], job)) {
    std::fprintf(stderr, "usage: impostor HOST:PORT JOB_ID_HEX\n");
    return 2;
  }
  const std::string address = argv[1];
  int accepted = 0;
  const bool garbage = garbage_refused(address);
  std::printf("garbage bytes: %s\n", garbage ? "refused" : "ACCEPTED");
  accepted += !garbage;
  const bool wrong_job = handshake_refused(address, replicator::random_job_id(), false);
  std::printf("hello with a made-up job id: %s\n", wrong_job ? "refused" : "ACCEPTED");
  accepted += !wrong_job;
  const bool wrong_proof = handshake_refused(address, job, true);
  std::printf("made-up proof: %s\n", wrong_proof ? "refused" : "ACCEPTED");
  accepted += !wrong_proof;
  return accepted == 0 ? 0 : 1;
}
