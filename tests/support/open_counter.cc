// An LD_PRELOAD library for tests: every successful open of the file whose "dev:ino" is in
// IMGCAST_COUNT_OPENS_OF appends one line to the file named by IMGCAST_COUNT_OPENS_LOG. It
// counts open(2)-family calls in every process that inherits it (the root and every local
// agent), which inotify cannot do reliably: it coalesces concurrent opens.
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

void record(int fd) {
  if (fd < 0)
    return;
  const char* target = getenv("IMGCAST_COUNT_OPENS_OF");
  const char* log = getenv("IMGCAST_COUNT_OPENS_LOG");
  if (target == nullptr || log == nullptr)
    return;
  struct stat st {};
  if (fstat(fd, &st) != 0)
    return;
  char id[64];
  snprintf(id, sizeof id, "%lu:%lu", static_cast<unsigned long>(st.st_dev),
           static_cast<unsigned long>(st.st_ino));
  if (strcmp(id, target) != 0)
    return;
  using OpenFn = int (*)(const char*, int, ...);
  static OpenFn real_open = reinterpret_cast<OpenFn>(dlsym(RTLD_NEXT, "open"));
  const int out = real_open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (out < 0)
    return;
  char line[64];
  const int n = snprintf(line, sizeof line, "%d\n", static_cast<int>(getpid()));
  (void)!write(out, line, static_cast<size_t>(n));
  close(out);
}

mode_t mode_arg(int flags, va_list args) {
  return (flags & (O_CREAT | O_TMPFILE)) != 0 ? static_cast<mode_t>(va_arg(args, int)) : 0;
}

}  // namespace

#define IMGCAST_WRAP_OPEN(name)                                     \
  extern "C" int name(const char* path, int flags, ...) {           \
    va_list args;                                                   \
    va_start(args, flags);                                          \
    const mode_t mode = mode_arg(flags, args);                      \
    va_end(args);                                                   \
    using Fn = int (*)(const char*, int, ...);                      \
    static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, #name)); \
    const int fd = real(path, flags, mode);                         \
    record(fd);                                                     \
    return fd;                                                      \
  }

#define IMGCAST_WRAP_OPENAT(name)                                   \
  extern "C" int name(int dir, const char* path, int flags, ...) {  \
    va_list args;                                                   \
    va_start(args, flags);                                          \
    const mode_t mode = mode_arg(flags, args);                      \
    va_end(args);                                                   \
    using Fn = int (*)(int, const char*, int, ...);                 \
    static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, #name)); \
    const int fd = real(dir, path, flags, mode);                    \
    record(fd);                                                     \
    return fd;                                                      \
  }

IMGCAST_WRAP_OPEN(open)
IMGCAST_WRAP_OPEN(open64)
IMGCAST_WRAP_OPENAT(openat)
IMGCAST_WRAP_OPENAT(openat64)

extern "C" FILE* fopen(const char* path, const char* mode) {
  using Fn = FILE* (*)(const char*, const char*);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "fopen"));
  FILE* file = real(path, mode);
  if (file != nullptr)
    record(fileno(file));
  return file;
}
