#include "replicator/image/page_runner.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "replicator/image/staged_image.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older kernels answer EINVAL and fault on the way
#endif

namespace imgcast::replicator {

namespace {
constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();
}  // namespace

PageRunner::PageRunner(StagedImage& image, Arrival arrival)
    : image_(image),
      size_(image.bytes().size()),
      allocate_(image.space() == StagedImage::Space::kChecked &&
                arrival == Arrival::kThroughMapping),
      map_(arrival == Arrival::kThroughMapping),
      write_back_(!image.in_memory()),
      thread_([this] { run(); }) {}

PageRunner::~PageRunner() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true);
  }
  wake_.notify_one();
  thread_.join();
}

void PageRunner::advance(std::uint64_t bytes) noexcept {
  point_.store(bytes);
  if (bytes >= wanted_.load()) {
    // Under the lock: the thread either has not checked its wait condition yet (and will see the
    // new point) or is asleep and gets this notification.
    std::lock_guard lock(mutex_);
    wake_.notify_one();
  }
}

std::optional<std::string> PageRunner::failure() const {
  if (!failed_.load()) {
    return std::nullopt;
  }
  std::lock_guard lock(mutex_);
  return failure_;
}

bool PageRunner::step(std::uint64_t point) {
  const int fd = image_.file_descriptor();
  const std::uint64_t mapped = mapped_.load();
  if (mapped < std::min(size_, point + kAhead)) {
    const std::uint64_t length = std::min(kStep, size_ - mapped);
    if (allocate_ &&
        ::fallocate(fd, 0, static_cast<off_t>(mapped), static_cast<off_t>(length)) != 0) {
      const int error = errno;
      std::lock_guard lock(mutex_);
      failure_ = fmt::format(
          "no space left for the image in {} ({} of {} bytes allocated): {}; free space or pick "
          "another destination",
          image_.where(), mapped, size_, std::strerror(error));
      failed_.store(true);
      return false;
    }
    if (map_) {
      // Advice: where the kernel cannot, the receive path takes the faults itself.
      (void)::madvise(image_.bytes().data() + mapped, length, MADV_POPULATE_WRITE);
    }
    mapped_.store(mapped + length);
    return true;
  }
  if (write_back_) {
    const std::uint64_t finished = point >= size_ ? size_ : point / kStep * kStep;
    if (written_back_ < finished) {
      const std::uint64_t length = std::min(kStep, finished - written_back_);
      // Start this step's write-back, then wait for the ones before it: the disk works behind
      // the data and dirty pages stay a few steps deep. Failures are left to commit()'s fsync,
      // which reports them.
      (void)::sync_file_range(fd, static_cast<off_t>(written_back_), static_cast<off_t>(length),
                              SYNC_FILE_RANGE_WRITE);
      if (waited_ < written_back_) {
        (void)::sync_file_range(
            fd, static_cast<off_t>(waited_), static_cast<off_t>(written_back_ - waited_),
            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        waited_ = written_back_;
      }
      written_back_ += length;
      return true;
    }
  }
  return false;
}

void PageRunner::run() noexcept {
  while (!stop_.load()) {
    if (step(point_.load())) {
      continue;
    }
    if (failed_.load()) {
      return;
    }
    // Nothing to do until the point passes where the next step's work begins.
    const std::uint64_t mapped = mapped_.load();
    std::uint64_t wanted = kNever;
    if (mapped < size_) {
      wanted = mapped + kStep > kAhead ? mapped + kStep - kAhead : 0;  // room for a whole step
    }
    if (write_back_ && written_back_ < size_) {
      wanted = std::min(wanted, std::min(size_, written_back_ + kStep));
    }
    if (wanted == kNever) {
      return;  // every page mapped and written back (or started): nothing more to do
    }
    std::unique_lock lock(mutex_);
    wanted_.store(wanted);
    wake_.wait(lock, [&] { return stop_.load() || point_.load() >= wanted; });
  }
}

}  // namespace imgcast::replicator
