// The demo's sample image: a real squashfs image built with mksquashfs when it is installed
// (what Apptainer and Singularity run), else a file of random bytes. Either way about `bytes`
// long, with content that does not compress, so the copy does real work.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace imgcast::cli {

struct SampleImage {
  std::filesystem::path path;
  std::string kind;  // "squashfs" or "random bytes"
};

// Throws TransferError when the image cannot be written.
SampleImage make_sample_image(const std::filesystem::path& dir, std::uint64_t bytes);

// True when both files hold the same bytes (compared through mmap, a chunk at a time).
bool same_contents(const std::filesystem::path& a, const std::filesystem::path& b);

}  // namespace imgcast::cli
