#include "replicator/pipeline/data_channel.h"

namespace imgcast::replicator {

namespace {

Admission::Options data_admission(const JobKey& key, const JobId& job,
                                  std::chrono::milliseconds deadline, std::size_t max_waiting) {
  Admission::Options options;
  options.channel = Channel::kData;
  options.key = &key;
  options.job = job;
  options.deadline = deadline;
  options.max_waiting = max_waiting;
  // No rank filter: before the plan nobody knows who our children are; the node checks the
  // rank and tree of each proven peer's Region before it serves it (DataNode::serve).
  return options;
}

}  // namespace

DataChannel::DataChannel(transport::Context& data, const JobKey& key, const JobId& job,
                         std::chrono::milliseconds handshake_deadline, std::size_t max_waiting)
    : data_(data), admission_(data_admission(key, job, handshake_deadline, max_waiting)) {}

DataNode& DataChannel::start(const DataNodeOptions& options, StagedImage& image) {
  node_ = std::make_unique<DataNode>(data_, options, image);
  return *node_;
}

void DataChannel::handle(transport::Completion& event) {
  if (admission_.handle(event)) {
    serve_admitted();  // at once: a later event of this batch may come from the same peer
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
  serve_admitted();  // the ones that waited for the plan
  return node_->pump();
}

void DataChannel::serve_admitted() {
  if (node_ && admission_.has_admitted()) {
    for (AdmittedPeer& peer : admission_.take()) {
      node_->serve(std::move(peer));
    }
  }
}

}  // namespace imgcast::replicator
