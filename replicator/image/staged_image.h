// StagedImage: where a node's copy is built. A temporary file in the destination's directory
// (".NAME.imgcast-JOB.tmp"), sized up front with fallocate so a full disk fails before any data
// moves, and mapped read-write so the transport receives straight into it. commit() makes it the
// destination atomically (fsync, fchmod, rename, fsync of the directory); until then nothing
// exists under the destination name, and the destructor removes the temporary file.
//
// The directory is opened once and every later step is relative to it (openat/renameat), so a
// symlink swapped into the path afterwards cannot redirect the write; the temporary file is
// created O_EXCL|O_NOFOLLOW, and rename replaces a symlink at the destination instead of
// following it.
//
// The file is flock()ed for its whole life, and create() first sweeps the directory's staging
// files whose lock is free (their run died): staging_sweep.h.
#pragma once

#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "replicator/image/cache_record.h"
#include "replicator/unique_fd.h"

namespace imgcast::replicator {

// Throws SecurityError when the directory of `destination` resolves through a symlink (its
// real path differs from the path named). A missing directory passes (create() reports it).
void refuse_symlinked_directory(const std::filesystem::path& destination);

// The directory a copy (or a tree) goes in, opened; InputError saying what is wrong with it
// (missing, not a directory, not accessible) otherwise.
UniqueFd open_destination_directory(const std::filesystem::path& dir);

// Whether a file system of this statfs f_type keeps its files in memory (tmpfs, ramfs): nothing
// there is written back, so nothing needs a flush.
inline bool memory_file_system(decltype(statfs::f_type) type) noexcept {
  return type == TMPFS_MAGIC || type == RAMFS_MAGIC;
}

// The bytes an unprivileged writer may still take in the file system holding `fd` or `path`
// (f_bavail): what a reservation is checked against where none is made up front. nullopt when the
// kernel cannot say (the check is then skipped and a full file system shows as a write error).
std::optional<std::uint64_t> free_bytes(int fd);
std::optional<std::uint64_t> free_bytes(const std::filesystem::path& path);

class StagedImage {
 public:
  // Throws InputError with a one-line reason when the directory is missing or not writable, or
  // the destination is a directory; TransferError when the space cannot be reserved (naming the
  // size and the directory). `job_tag` goes into the temporary name ([A-Za-z0-9_-] only).
  // SecurityError when the destination's directory resolves through a symlink (unless
  // `follow_symlinks`).
  // With Reserve::kLater the space is reserved (and the file mapped) by reserve(), once the
  // caller knows the copy is needed.
  enum class Reserve { kNow, kLater };
  static StagedImage create(const std::filesystem::path& destination, std::uint64_t size,
                            const std::string& job_tag, mode_t mode = 0644,
                            bool follow_symlinks = false, Reserve reserve = Reserve::kNow);
  // Scratch space in memory (a memfd: no name, no file beside `destination`, gone with the
  // process however it ends) for bytes that are read once and never placed as they are: a
  // tree's stream (tree_placement.h). `destination` only names what it is for in messages.
  // reserve() checks the machine's available memory instead of a file system's free space;
  // commit() refuses.
  static StagedImage create_in_memory(const std::filesystem::path& destination, std::uint64_t size,
                                      Reserve reserve = Reserve::kNow);
  // Makes sure the image fits (see space(): a full disk or a too-small tmpfs fails here, before
  // any data moves) and maps the file. Throws TransferError naming the size and the directory.
  // Idempotent. Costs milliseconds whatever the image's size.
  void reserve();

  StagedImage(StagedImage&& other) noexcept;
  StagedImage& operator=(StagedImage&&) = delete;
  StagedImage(const StagedImage&) = delete;
  StagedImage& operator=(const StagedImage&) = delete;
  ~StagedImage();  // removes the temporary file unless committed; logs, never throws

  // The whole mapping (empty for a 0-byte image). Stays valid after commit().
  std::span<std::byte> bytes() const noexcept { return {data_, size_}; }
  const std::filesystem::path& destination() const noexcept { return destination_; }
  bool committed() const noexcept { return committed_; }

  // How reserve() made sure the image fits. kReserved: every block is ours (fallocate, cheap on
  // ext4, xfs, btrfs). kChecked: tmpfs, where fallocate would zero every page before data moves;
  // the free space was checked and PageRunner allocates the pages just ahead of the data.
  // kUnchecked: the filesystem cannot preallocate (warned; a full disk shows late).
  enum class Space { kReserved, kChecked, kUnchecked };
  Space space() const noexcept { return space_; }
  // tmpfs, ramfs or create_in_memory(): the copy lives in memory, so there is nothing to write
  // back.
  bool in_memory() const noexcept { return in_memory_; }
  // Where the bytes are, for messages: the destination's directory, or "memory".
  std::string where() const;
  // The temporary file (for PageRunner's fallocate and sync_file_range).
  int file_descriptor() const noexcept { return file_fd_.get(); }
  // Makes the file visible under the destination name, with `cache` attached (cache_record.h)
  // when given. Throws TransferError on failure (and the temporary file is still removed by the
  // destructor).
  void commit(const CacheRecord* cache = nullptr);
  // Removes the temporary file now (idempotent; no effect after commit).
  void discard() noexcept;
  // Drops this process's page-table entries for the mapping (MADV_DONTNEED); the bytes stay in
  // the file (or memfd) and the mapping stays valid: a later read faults the same pages back in.
  // Tearing down 4 KiB entries costs ~70 ms per GiB, and the root calls this as soon as every
  // node is done, while the agents exit, instead of paying it after them at its own exit.
  void release_page_tables() noexcept;

 private:
  StagedImage() = default;
  void size_file(const std::string& dir_name);  // ftruncate to the image's size
  // reserve() of a named file: fallocate, or on tmpfs the free-space check (space()).
  void reserve_in_file(const std::string& dir_name);

  std::filesystem::path destination_;
  std::string final_name_;
  std::string temp_name_;
  UniqueFd dir_fd_;
  UniqueFd file_fd_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::uint64_t reserve_bytes_ = 0;  // the image's size, reserved by reserve()
  Space space_ = Space::kReserved;
  bool in_memory_ = false;
  bool memfd_ = false;  // create_in_memory(): no directory, no name, never committed
  mode_t mode_ = 0644;
  bool committed_ = false;
  bool removed_ = false;
  int signal_slot_ = -1;  // registration with the stop-signal handler (stop_signal.h)
};

}  // namespace imgcast::replicator
