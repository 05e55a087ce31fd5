// Writes the seed corpus: one valid input per message kind, so the fuzzers start from inputs
// that pass the first checks. Run by fuzz/run.sh when a corpus directory is empty.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>
#include <utility>

#include "replicator/protocol/auth.h"
#include "replicator/protocol/job_secret.h"
#include "replicator/protocol/messages.h"
#include "replicator/cache/entry_record.h"
#include "replicator/tree/manifest.h"
#include "replicator/tree/stream_layout.h"
#include "transport/fallback/two_halves.h"
#include "transport/byte_order.h"
#include "transport/region_descriptor.h"
#include "transport/tcp/frame_header.h"
#include "transport/verbs/connect_params.h"
#include "transport/verbs/rdma_wire.h"
#include "transport/verbs/region_key.h"

namespace fs = std::filesystem;
using namespace imgcast;

static void write(const fs::path& dir, const std::string& name, const void* data, std::size_t n) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary).write(static_cast<const char*>(data), n);
}

int main(int argc, char** argv) {
  const fs::path root = argc > 1 ? argv[1] : "corpus";
  transport::tcp::FrameHeader write_frame;
  write_frame.region_id = 1;
  write_frame.length = 4096;
  write_frame.write_key = 42;
  std::array<std::byte, 48> bytes;
  write_frame.encode(bytes);
  write(root / "fuzz_frame_header", "write", bytes.data(), bytes.size());
  transport::tcp::FrameHeader control;
  control.type = transport::tcp::FrameType::kControl;
  control.length = 10;
  control.encode(bytes);
  write(root / "fuzz_frame_header", "control", bytes.data(), bytes.size());

  transport::RegionDescriptor descriptor;
  descriptor.length = 1 << 20;
  descriptor.key.assign(8, std::byte{7});
  const auto d = descriptor.encode();
  write(root / "fuzz_region_descriptor", "tcp", d.data(), d.size());

  replicator::Plan plan;
  plan.image_bytes = 1 << 30;
  plan.chunk_bytes = 1 << 19;
  plan.job_size = 16;
  plan.topology = "chain";
  plan.destination = "/tmp/%r.sif";
  plan.job_tag = "abc";
  replicator::Plan tree_plan = plan;
  tree_plan.tree = 1;
  replicator::Probe tree_probe;
  tree_probe.destination = "/tmp/%r/env";
  tree_probe.tree = 1;
  const std::vector<replicator::Message> messages = {replicator::Hello{},
                                                     replicator::Challenge{},
                                                     replicator::Proof{},
                                                     replicator::Join{{std::byte{'h'}}},
                                                     plan,
                                                     replicator::Ready{},
                                                     replicator::Failed{1, "no"},
                                                     replicator::Finish{},
                                                     replicator::Result{5, 1, 2},
                                                     replicator::Abort{"x"},
                                                     replicator::Bye{},
                                                     replicator::Region{d, 3, 1},
                                                     replicator::Orphaned{1, 2, "x"},
                                                     replicator::Adopt{1, 1},
                                                     replicator::Adopted{1, 1},
                                                     replicator::Reparent{1, 1, {}},
                                                     replicator::Refetch{4},
                                                     replicator::Burst{2, d},
                                                     replicator::BurstAck{2}};
  for (const auto& m : messages) {
    const auto e = replicator::encode(m);
    write(root / "fuzz_messages", replicator::message_name(m), e.data(), e.size());
  }
  // The tree-flagged forms too (protocol 4), under names of their own.
  for (const auto& [name, m] : {std::pair<const char*, replicator::Message>{"PlanTree", tree_plan},
                                {"ProbeTree", tree_probe}}) {
    const auto e = replicator::encode(m);
    write(root / "fuzz_messages", name, e.data(), e.size());
  }
  replicator::JobSecret secret;
  const std::string line = secret.to_line();
  write(root / "fuzz_job_secret", "line", line.data(), line.size());

  // fuzz_verbs_wire: the first byte picks the decoder.
  std::vector<std::byte> wire(1 + 64);
  wire[0] = std::byte{0};
  std::size_t n = transport::verbs::encode_notice(std::span(wire).subspan(1), 3, 7, 4096, 99);
  write(root / "fuzz_verbs_wire", "notice", wire.data(), 1 + n);
  const std::byte fragment[5] = {};
  n = transport::verbs::encode_control(std::span(wire).subspan(1), 1,
                                       transport::verbs::kFirstFragment, fragment);
  write(root / "fuzz_verbs_wire", "control", wire.data(), 1 + n);
  transport::verbs::RegionKey key{1 << 20, {1, 2, 3}};
  std::vector<std::byte> keyed(9);
  keyed[0] = std::byte{1};
  transport::store_le64(keyed.data() + 1, 3 << 20);
  const auto encoded_key = key.encode();
  keyed.insert(keyed.end(), encoded_key.begin(), encoded_key.end());
  write(root / "fuzz_verbs_wire", "region_key", keyed.data(), keyed.size());
  std::vector<std::byte> params = {std::byte{2}};
  const auto encoded_params = transport::verbs::ConnectParams{136, 8192}.encode();
  params.insert(params.end(), encoded_params.begin(), encoded_params.end());
  write(root / "fuzz_verbs_wire", "connect_params", params.data(), params.size());

  replicator::TreeManifest tree;
  tree.entries = {{.type = replicator::TreeEntryType::kDirectory, .path = "d"},
                  {.type = replicator::TreeEntryType::kFile, .path = "d/f", .size = 3},
                  {.type = replicator::TreeEntryType::kSymlink, .path = "s", .target = "d/f"},
                  {.type = replicator::TreeEntryType::kHardlink, .path = "h", .link_to = 1}};
  tree.data_bytes = 3;
  const auto manifest = replicator::encode_manifest(tree);
  write(root / "fuzz_tree_manifest", "manifest", manifest.data(), manifest.size());
  auto stream = replicator::encode_tree_prefix(tree);
  stream.insert(stream.end(), 3, std::byte{'x'});
  write(root / "fuzz_tree_manifest", "stream", stream.data(), stream.size());

  const std::vector<std::byte> rdma_half(20, std::byte{0x11});
  const std::vector<std::byte> tcp_half = {std::byte{'h'}, std::byte{':'}, std::byte{'1'}};
  const auto both = transport::fallback::pack(rdma_half, tcp_half);
  write(root / "fuzz_two_halves", "both", both.data(), both.size());
  const auto tcp_only = transport::fallback::pack({}, tcp_half);
  write(root / "fuzz_two_halves", "tcp_only", tcp_only.data(), tcp_only.size());

  replicator::EntryRecord record;
  record.digest = {0x0123456789abcdefULL, 42};
  record.bytes = 1 << 20;
  record.inode = 7;
  record.mtime_ns = 1'700'000'000'000'000'000;
  record.added_ns = record.mtime_ns;
  record.last_used_ns = record.mtime_ns + 1;
  record.sources = {{"00112233aabbccdd", "/lustre/app.sif"}};
  const std::string json = record.encode();
  write(root / "fuzz_entry_record", "record", json.data(), json.size());
  return 0;
}
