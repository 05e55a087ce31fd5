#include "replicator/image/image_source.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "replicator/errors.h"
#include "replicator/image/cache_record.h"

namespace imgcast::replicator {

ImageSource::ImageSource(std::filesystem::path path, UniqueFd fd, std::uint64_t size)
    : path_(std::move(path)), fd_(std::move(fd)), size_(size) {}

ImageSource ImageSource::open(const std::filesystem::path& path) {
  // The one open of the source for the whole job; everything after works on this descriptor
  // (no stat by path), so the PFS sees one open and one stream of large reads. O_NONBLOCK only
  // so that naming a FIFO (or a tty) fails below instead of hanging in open() until a writer
  // appears; it is cleared once fstat shows a regular file or block device.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    const int error = errno;
    switch (error) {
      case ENOENT:
        throw InputError(fmt::format("source {} does not exist: check the path", path.string()));
      case EACCES:
      case EPERM:
        throw InputError(
            fmt::format("source {} is not readable: check its permissions", path.string()));
      case ENOTDIR:
        throw InputError(fmt::format(
            "source {}: a part of the path is not a directory: check the path", path.string()));
      default:
        throw InputError(
            fmt::format("cannot open source {}: {}", path.string(), std::strerror(error)));
    }
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    throw InputError(fmt::format("cannot stat source {}: {}", path.string(), std::strerror(errno)));
  }
  std::uint64_t size = 0;
  if (S_ISDIR(st.st_mode)) {
    throw InputError(fmt::format("source {} is a directory: name the image file", path.string()));
  } else if (S_ISREG(st.st_mode)) {
    size = static_cast<std::uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd.get(), BLKGETSIZE64, &size) != 0) {
      throw InputError(fmt::format("cannot read the size of block device {}: {}", path.string(),
                                   std::strerror(errno)));
    }
  } else {
    throw InputError(fmt::format(
        "source {} is not a regular file or block device: name the image file", path.string()));
  }
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    throw InputError(
        fmt::format("cannot set up reading of source {}: {}", path.string(), std::strerror(errno)));
  }
  // Large sequential reads: ask for aggressive read-ahead. Advice only, so failure is harmless.
  (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  return ImageSource(path, std::move(fd), size);
}

std::string ImageSource::cache_key() const {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0)
    return "";  // no key: nothing counts as cached
  std::error_code error;
  const std::filesystem::path absolute = std::filesystem::absolute(path_, error);
  return make_source_key(error ? path_ : absolute, st);
}

void ImageSource::read(const Chunk& chunk, std::span<std::byte> into) const {
  std::size_t done = 0;
  while (done < chunk.length) {
    const ssize_t n = ::pread(fd_.get(), into.data() + done, chunk.length - done,
                              static_cast<off_t>(chunk.offset + done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw TransferError(fmt::format("reading source {} at offset {} failed: {}", path_.string(),
                                      chunk.offset + done, std::strerror(errno)));
    }
    if (n == 0) {
      throw shrank_at(chunk.offset + done);
    }
    done += static_cast<std::size_t>(n);
  }
}

TransferError ImageSource::shrank_at(std::uint64_t offset) const {
  return TransferError(fmt::format(
      "source {} shrank while reading: it ended at {} bytes, {} were expected; do not change the "
      "image during a transfer",
      path_.string(), offset, size_));
}

bool ImageSource::copy_to_file(const Chunk& chunk, int fd) const {
  if (!kernel_copy_) {
    return false;
  }
  // sendfile writes at fd's file position: only this chunk's copy moves it (one chunk at a time).
  if (::lseek(fd, static_cast<off_t>(chunk.offset), SEEK_SET) < 0) {
    throw TransferError(fmt::format("placing the root's copy of {} at offset {} failed: {}",
                                    path_.string(), chunk.offset, std::strerror(errno)));
  }
  off_t from = static_cast<off_t>(chunk.offset);
  std::size_t done = 0;
  while (done < chunk.length) {
    const ssize_t n = ::sendfile(fd, fd_.get(), &from, chunk.length - done);
    if (n < 0) {
      const int error = errno;
      if (error == EINTR) {
        continue;
      }
      if (done == 0 && (error == EINVAL || error == ENOSYS || error == EOPNOTSUPP)) {
        kernel_copy_ = false;  // these two files cannot be spliced: read() from now on
        return false;
      }
      throw TransferError(
          fmt::format("copying source {} at offset {} into the root's copy "
                      "failed: {}",
                      path_.string(), chunk.offset + done, std::strerror(error)));
    }
    if (n == 0) {
      throw shrank_at(chunk.offset + done);
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace imgcast::replicator
