// ImageSource: the only reader of the image on the parallel filesystem. The root opens it once
// (O_RDONLY, sequential read-ahead advice) and reads each chunk once, straight into the copy it
// will send from (through the kernel where it can: copy_to_file()); nothing else in the job
// touches the source.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

#include "replicator/errors.h"
#include "replicator/image/chunk_source.h"
#include "replicator/plan/chunk_plan.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

class ImageSource final : public ChunkSource {
 public:
  // Throws InputError with a one-line reason: missing, unreadable, a directory, not a regular
  // file or block device.
  static ImageSource open(const std::filesystem::path& path);

  std::uint64_t size() const noexcept override { return size_; }
  const std::filesystem::path& path() const noexcept { return path_; }
  // make_source_key() of the open file: decides the node-local cache without reading a byte.
  std::string cache_key() const override;
  // Reads exactly chunk.length bytes at chunk.offset into `into` (short reads are retried).
  // Throws TransferError when the source shrank or a read fails.
  // REQUIRES: into.size() >= chunk.length.
  void read(const Chunk& chunk, std::span<std::byte> into) const override;
  // sendfile() from the source into `fd` (a file on any file system: the source is on the
  // parallel one, the copy node-local). False, from then on, once the kernel cannot splice
  // between the two (EINVAL, ENOSYS, EOPNOTSUPP at the first chunk): read() does it instead.
  bool copy_to_file(const Chunk& chunk, int fd) const override;
  bool copies_in_kernel() const noexcept override { return kernel_copy_; }

 private:
  ImageSource(std::filesystem::path path, UniqueFd fd, std::uint64_t size);
  // What read() and copy_to_file() throw when the source ends at `offset`, before its size.
  TransferError shrank_at(std::uint64_t offset) const;
  std::filesystem::path path_;
  UniqueFd fd_;
  std::uint64_t size_;
  // Whether copy_to_file() may still try the kernel's copy. Not atomic: chunks are read one at a
  // time (SourceReader's lock), and a move carries it along.
  mutable bool kernel_copy_ = true;
};

}  // namespace imgcast::replicator
