// flip_proxy: a byte-flipping TCP proxy between a child and its parent, for the corruption tests.
//
//   imgcast_flip_proxy LISTEN_HOST:PORT TARGET_HOST:PORT (--flip N,N,... | --flip-all) [--replay]
//                      [--rate MB_PER_S]
//
// It accepts connections on LISTEN (the child connects here, told by the parent's
// --advertise-data) and relays each to TARGET (the parent's real data port), both ways. In the
// parent -> child direction it follows the TCP backend's frames (transport/tcp/frame_header.h)
// and flips one payload byte of the write frames it is told to (counted from 1 over all
// connections), so the chunk arrives with a bad xxh3-64 while every header stays intact.
// With --replay it also records what the first child sent upstream (its handshake: Hello, Proof,
// Region) and, once that has gone quiet, sends the same bytes to TARGET on a new connection, as
// an eavesdropper replaying a transcript would; the parent must refuse it. --rate caps the parent
// -> child relay, so a test can count on the transfer still running a while.
//
// It prints one line per event to stderr ("flipped write 5", "replay: ...") and exits when the
// parent has closed every connection it relayed, or after 120 s.
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "transport/tcp/frame_header.h"

namespace {

using imgcast::transport::tcp::FrameHeader;
using imgcast::transport::tcp::FrameType;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string listen;
  std::string target;
  std::set<unsigned> flip;  // write frames to corrupt, counted from 1
  bool flip_all = false;
  bool replay = false;
  double rate_bytes_per_second = 0;  // parent -> child, 0: as fast as it comes
};

std::atomic<unsigned> g_writes{0};  // write frames seen, over every connection
std::atomic<int> g_open{0};         // connections being relayed
std::atomic<bool> g_served{false};  // at least one connection was relayed
std::mutex g_record_mutex;
std::vector<char> g_record;  // the first connection's upstream bytes
Clock::time_point g_last_upstream{};
bool g_recording = true;

// A socket for "host:port", connected (or, passive, listening); -1 when that fails.
int open_socket(const std::string& address, bool passive) {
  const auto colon = address.rfind(':');
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* found = nullptr;
  if (::getaddrinfo(address.substr(0, colon).c_str(), address.substr(colon + 1).c_str(), &hints,
                    &found) != 0) {
    return -1;
  }
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, ::freeaddrinfo);
  const int fd = ::socket(found->ai_family, SOCK_STREAM, 0);
  const int one = 1;
  const bool ok = passive ? ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                                ::bind(fd, found->ai_addr, found->ai_addrlen) == 0 &&
                                ::listen(fd, 16) == 0
                          : ::connect(fd, found->ai_addr, found->ai_addrlen) == 0;
  if (!ok) {
    ::close(fd);
    return -1;
  }
  return fd;
}
int connect_to(const std::string& address) { return open_socket(address, false); }
int listen_on(const std::string& address) { return open_socket(address, true); }

bool send_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t sent = ::send(fd, data, size, MSG_NOSIGNAL);
    if (sent <= 0)
      return false;
    data += sent;
    size -= static_cast<std::size_t>(sent);
  }
  return true;
}

// Follows the frames of the parent -> child stream and corrupts the chosen write payloads.
class FrameFlipper {
 public:
  explicit FrameFlipper(const Options& options) : options_(options) {}

  void process(char* data, std::size_t size) {
    std::size_t at = 0;
    while (at < size) {
      if (payload_left_ == 0) {
        const std::size_t take = std::min(FrameHeader::kBytes - header_fill_, size - at);
        std::memcpy(header_ + header_fill_, data + at, take);
        header_fill_ += take;
        at += take;
        if (header_fill_ == FrameHeader::kBytes) {
          header_fill_ = 0;
          start_payload();
        }
        continue;
      }
      const std::size_t take = std::min<std::size_t>(payload_left_, size - at);
      if (flip_at_ >= payload_done_ && flip_at_ < payload_done_ + take) {
        data[at + (flip_at_ - payload_done_)] ^= 0x5a;
        flip_at_ = ~std::uint64_t{0};
      }
      payload_done_ += take;
      payload_left_ -= take;
      at += take;
    }
  }

 private:
  void start_payload() {
    const auto header =
        FrameHeader::decode(std::span<const std::byte, FrameHeader::kBytes>(
                                reinterpret_cast<std::byte*>(header_), FrameHeader::kBytes),
                            1u << 20);
    payload_done_ = 0;
    flip_at_ = ~std::uint64_t{0};
    if (!header) {
      payload_left_ = 0;  // not a frame: pass everything on untouched from here
      return;
    }
    payload_left_ = header->length;
    if (header->type == FrameType::kWrite) {
      const unsigned number = ++g_writes;
      if (options_.flip_all || options_.flip.count(number) != 0) {
        flip_at_ = header->length / 2;
        std::fprintf(stderr, "flip_proxy: flipped write %u (chunk %u)\n", number, header->imm);
      }
    }
  }

  const Options& options_;
  char header_[FrameHeader::kBytes];
  std::size_t header_fill_ = 0;
  std::uint64_t payload_left_ = 0;
  std::uint64_t payload_done_ = 0;
  std::uint64_t flip_at_ = ~std::uint64_t{0};
};

void relay(int child, const Options& options, bool record) {
  const int parent = connect_to(options.target);
  if (parent < 0) {
    std::fprintf(stderr, "flip_proxy: cannot reach %s\n", options.target.c_str());
    ::close(child);
    --g_open;
    return;
  }
  FrameFlipper flipper(options);
  std::vector<char> buffer(1 << 20);
  const auto started = Clock::now();
  double relayed_down = 0;
  pollfd fds[2] = {{child, POLLIN, 0}, {parent, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, 1000) < 0)
      break;
    bool done = false;
    for (int side = 0; side < 2 && !done; ++side) {
      if ((fds[side].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
        continue;
      const ssize_t got = ::recv(fds[side].fd, buffer.data(), buffer.size(), 0);
      if (got <= 0) {
        done = true;
        break;
      }
      if (side == 1) {
        flipper.process(buffer.data(), static_cast<std::size_t>(got));
        relayed_down += static_cast<double>(got);
        if (options.rate_bytes_per_second > 0) {
          std::this_thread::sleep_until(
              started + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                            relayed_down / options.rate_bytes_per_second)));
        }
      } else if (record) {
        std::lock_guard lock(g_record_mutex);
        if (g_recording) {
          g_record.insert(g_record.end(), buffer.data(), buffer.data() + got);
          g_last_upstream = Clock::now();
        }
      }
      done = !send_all(fds[1 - side].fd, buffer.data(), static_cast<std::size_t>(got));
    }
    if (done)
      break;
  }
  ::close(child);
  ::close(parent);
  --g_open;
}

// Whole frames in `bytes` (headers and payloads), by the TCP backend's framing.
int whole_frames(const std::vector<char>& bytes) {
  int frames = 0;
  std::size_t at = 0;
  while (at + FrameHeader::kBytes <= bytes.size()) {
    const auto header = FrameHeader::decode(
        std::span<const std::byte, FrameHeader::kBytes>(
            reinterpret_cast<const std::byte*>(bytes.data() + at), FrameHeader::kBytes),
        1u << 20);
    if (!header || at + FrameHeader::kBytes + header->length > bytes.size())
      break;
    at += FrameHeader::kBytes + header->length;
    ++frames;
  }
  return frames;
}

// Sends the recorded handshake to the parent on a connection of its own and reports what the
// parent answered before closing it.
void replay(const Options& options) {
  std::vector<char> transcript;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  for (;;) {
    if (Clock::now() > deadline) {
      std::fprintf(stderr, "flip_proxy: replay: nothing was recorded\n");
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard lock(g_record_mutex);
    // The whole handshake (Hello, Proof, Region), then a moment of quiet.
    if (whole_frames(g_record) >= 3 &&
        Clock::now() - g_last_upstream > std::chrono::milliseconds(20)) {
      g_recording = false;
      transcript = g_record;
      break;
    }
  }
  const int fd = connect_to(options.target);
  if (fd < 0) {
    std::fprintf(stderr, "flip_proxy: replay: cannot reach %s\n", options.target.c_str());
    return;
  }
  send_all(fd, transcript.data(), transcript.size());
  std::size_t answered = 0;
  char buffer[4096];
  pollfd pfd{fd, POLLIN, 0};
  bool closed = false;
  while (::poll(&pfd, 1, 5000) > 0) {
    const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
    if (got <= 0) {
      closed = true;
      break;
    }
    answered += static_cast<std::size_t>(got);
  }
  ::close(fd);
  std::fprintf(stderr, "flip_proxy: replay: sent %zu recorded bytes, got %zu back, %s\n",
               transcript.size(), answered, closed ? "then the parent closed" : "still open");
}

std::set<unsigned> parse_numbers(const std::string& text) {
  std::set<unsigned> out;
  std::stringstream in(text);
  std::string word;
  while (std::getline(in, word, ',')) {
    out.insert(static_cast<unsigned>(std::stoul(word)));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: imgcast_flip_proxy LISTEN TARGET (--flip N,N,... | --flip-all) "
                 "[--replay]\n");
    return 1;
  }
  Options options;
  options.listen = argv[1];
  options.target = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--flip" && i + 1 < argc) {
      options.flip = parse_numbers(argv[++i]);
    } else if (arg == "--flip-all") {
      options.flip_all = true;
    } else if (arg == "--replay") {
      options.replay = true;
    } else if (arg == "--rate" && i + 1 < argc) {
      options.rate_bytes_per_second = std::stod(argv[++i]) * 1e6;
    } else {
      std::fprintf(stderr, "flip_proxy: unknown argument %s\n", arg.c_str());
      return 1;
    }
  }
  const int listener = listen_on(options.listen);
  if (listener < 0) {
    std::fprintf(stderr, "flip_proxy: cannot listen on %s\n", options.listen.c_str());
    return 1;
  }
  std::thread replayer;
  if (options.replay) {
    replayer = std::thread(replay, std::cref(options));
  }
  std::vector<std::thread> relays;
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (Clock::now() < deadline && !(g_served && g_open == 0)) {
    pollfd pfd{listener, POLLIN, 0};
    if (::poll(&pfd, 1, 100) <= 0)
      continue;
    const int child = ::accept(listener, nullptr, nullptr);
    if (child < 0)
      continue;
    const bool first = !g_served.exchange(true);
    ++g_open;
    relays.emplace_back(relay, child, std::cref(options), first && options.replay);
  }
  ::close(listener);
  for (auto& t : relays)
    t.join();
  if (replayer.joinable())
    replayer.join();
  return 0;
}
