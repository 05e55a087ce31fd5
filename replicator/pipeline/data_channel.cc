#include "replicator/pipeline/data_channel.h"

namespace imgcast::replicator {

namespace {

Admission::Options data_admission(const JobKey& key, const JobId& job,
                                  std::chrono::milliseconds deadline) {
  Admission::Options options;
  options.channel = Channel::kData;
  options.key = &key;
  options.job = job;
  options.deadline = deadline;
  // No rank filter: before the plan nobody knows who our children are; the node checks the
  // rank and tree of each proven peer's Region before it serves it (DataNode::serve).
  return options;
}

}  // namespace

DataChannel::DataChannel(transport::Context& data, const JobKey& key, const JobId& job,
                         std::chrono::milliseconds handshake_deadline)
    : data_(data), admission_(data_admission(key, job, handshake_deadline)) {}

DataNode& DataChannel::start(const DataNodeOptions& options, StagedImage& image) {
  node_ = std::make_unique<DataNode>(data_, options, image);
  return *node_;
}

void DataChannel::handle(transport::Completion& event) {
  if (admission_.handle(event)) {
    return;
  }
  if (node_) {
    // An event for nobody (a peer the node dropped) is ignored.
    (void)node_->handle(event);
  }
}

std::chrono::milliseconds DataChannel::after_batch(std::chrono::steady_clock::time_point now) {
  admission_.expire(now);
  if (!node_) {
    return std::chrono::milliseconds::max();
  }
  if (admission_.has_admitted()) {
    for (AdmittedPeer& peer : admission_.take()) {
      node_->serve(std::move(peer));
    }
  }
  return node_->pump();
}

}  // namespace imgcast::replicator
