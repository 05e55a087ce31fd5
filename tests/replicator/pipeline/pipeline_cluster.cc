#include "tests/replicator/pipeline/pipeline_cluster.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "replicator/plan/chunk_plan.h"
#include "transport/tcp/tcp_context.h"

namespace imgcast::replicator::test {

namespace tp = transport;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {
constexpr milliseconds kConnectTimeout{2000};
constexpr milliseconds kHandshakeDeadline{2000};
// The longest step() sleeps when nobody said it has work sooner.
constexpr milliseconds kMaxWait{5};
}  // namespace

// One node's process: members in creation order, so the DataChannel (and the DataNode with its
// endpoints) goes first and the Context last.
struct PipelineCluster::Node {
  std::unique_ptr<tp::Context> context;
  std::unique_ptr<tp::Listener> listener;
  std::optional<StagedImage> image;
  std::unique_ptr<DataChannel> channel;
  milliseconds may_sleep = kMaxWait;
};

PipelineCluster::PipelineCluster(const Options& options)
    : options_(options),
      key_(JobKey::random()),
      job_(random_job_id()),
      topology_(make_topology(options.topology, options.size, 0)) {
  const auto source_path = dir_ / "source.img";
  imgcast::test::write_random_file(source_path, options_.image_bytes, 7);
  std::ifstream in(source_path, std::ios::binary);
  source_bytes_.resize(options_.image_bytes);
  in.read(reinterpret_cast<char*>(source_bytes_.data()),
          static_cast<std::streamsize>(source_bytes_.size()));
  source_.emplace(ImageSource::open(source_path));
  for (int rank = 0; rank < options_.size; ++rank) {
    auto node = std::make_unique<Node>();
    node->context = tp::tcp::make_tcp_context({});
    tp::ListenOptions listen;
    listen.bind_host = "127.0.0.1";
    node->listener = node->context->listen(listen);
    node->channel = std::make_unique<DataChannel>(*node->context, key_, job_, kHandshakeDeadline);
    nodes_.push_back(std::move(node));
  }
}

PipelineCluster::~PipelineCluster() = default;

DataNode& PipelineCluster::node(int rank) { return *nodes_.at(rank)->channel->node(); }

StagedImage& PipelineCluster::image(int rank) { return *nodes_.at(rank)->image; }

std::span<const std::byte> PipelineCluster::address(int rank) const {
  return nodes_.at(rank)->listener->address();
}

void PipelineCluster::start(int rank) {
  std::vector<int> parents;
  if (rank != topology_->root()) {
    for (int tree = 0; tree < topology_->trees(); ++tree) {
      parents.push_back(topology_->parent(rank, tree));
    }
  }
  start(rank, parents);
}

void PipelineCluster::start(int rank, const std::vector<int>& parents) {
  Node& node = *nodes_.at(rank);
  const bool elsewhere = static_cast<std::size_t>(rank) < options_.stage_in.size() &&
                         !options_.stage_in[static_cast<std::size_t>(rank)].empty();
  const auto destination =
      (elsewhere ? options_.stage_in[static_cast<std::size_t>(rank)] : dir_.path()) /
      fmt::format("node{}.img", rank);
  node.image.emplace(StagedImage::create(destination, options_.image_bytes, "test"));
  DataNodeOptions node_options;
  node_options.rank = rank;
  node_options.topology = topology_.get();
  node_options.image_bytes = options_.image_bytes;
  node_options.chunk_bytes = options_.chunk_bytes;
  node_options.key = &key_;
  node_options.job = job_;
  DataNode& data_node = node.channel->start(node_options, *node.image);
  if (rank == topology_->root()) {
    data_node.use_source(*source_);
    return;
  }
  for (std::size_t tree = 0; tree < parents.size(); ++tree) {
    data_node.connect_to_parent(static_cast<int>(tree), address(parents[tree]), kConnectTimeout,
                                fmt::format("parent rank {}", parents[tree]));
  }
}

void PipelineCluster::start_all() {
  for (int rank = 0; rank < options_.size; ++rank) {
    start(rank);
  }
}

void PipelineCluster::kill(int rank) { nodes_.at(rank).reset(); }

void PipelineCluster::step() {
  std::vector<pollfd> fds;
  milliseconds wait = kMaxWait;
  for (const auto& node : nodes_) {
    if (!node)
      continue;
    fds.push_back({node->context->wait_fd(), POLLIN, 0});
    if (const int wake = node->channel->wake_fd(); wake >= 0) {
      fds.push_back({wake, POLLIN, 0});
    }
    wait = std::min(wait, node->may_sleep);
  }
  // A readable fd is all this waits for: each Context is then polled without blocking.
  (void)::poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
  std::vector<tp::Completion> events;
  for (int rank = 0; rank < static_cast<int>(nodes_.size()); ++rank) {
    Node* node = nodes_[rank].get();
    if (node == nullptr)
      continue;
    events.clear();
    const tp::Status status = node->context->poll(events, milliseconds(0));
    ASSERT_TRUE(status.is_ok()) << "rank " << rank << ": " << status.to_string();
    for (tp::Completion& event : events) {
      if (on_event) {
        on_event(rank, event);
      }
      node->channel->handle(event);
    }
    node->may_sleep = node->channel->after_batch(Clock::now());
  }
}

bool PipelineCluster::run_until(const std::function<bool()>& done, milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > deadline || ::testing::Test::HasFatalFailure()) {
      return false;
    }
    step();
  }
  return true;
}

bool PipelineCluster::all_complete() const {
  return std::all_of(nodes_.begin(), nodes_.end(), [](const auto& node) {
    return !node || node->channel->node() == nullptr || node->channel->node()->complete();
  });
}

ImageDigest PipelineCluster::source_digest() const {
  ImageHasher hasher;
  hasher.update(source_bytes_);
  return hasher.digest();
}

std::uint32_t PipelineCluster::chunk_count() const noexcept {
  return ChunkPlan(options_.image_bytes, options_.chunk_bytes).count();
}

bool PipelineCluster::holds_source(int rank) {
  const auto bytes = image(rank).bytes();
  return bytes.size() == source_bytes_.size() &&
         std::memcmp(bytes.data(), source_bytes_.data(), bytes.size()) == 0;
}

}  // namespace imgcast::replicator::test
