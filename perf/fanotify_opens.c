// Counts the opens of files on one filesystem with fanotify, for perf/tree_bench.sh: the
// source-side operations of a whole job (every host, every mount namespace: the mark is on the
// filesystem, FAN_MARK_FILESYSTEM, so the hosts' private mount namespaces count too).
//
//   fanotify_opens MOUNTPOINT PREFIX READY_FILE
//
// Marks MOUNTPOINT's filesystem for FAN_OPEN, touches READY_FILE once the mark is in place,
// then counts every open whose path starts with PREFIX until SIGINT or SIGTERM; it then drains
// what is queued and prints one line of JSON:
//   {"regular_opens": R, "directory_opens": D, "other_opens": O, "distinct_regular": F}
// (distinct_regular: distinct inodes among the regular files opened). Needs CAP_SYS_ADMIN.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

// A small open-addressing set of inode numbers (one filesystem, so st_ino identifies a file).
static uint64_t *set;
static size_t set_cap, set_len;
static int set_add(uint64_t ino) {
  if (ino == 0) ino = UINT64_MAX;
  if (2 * (set_len + 1) > set_cap) {
    size_t cap = set_cap ? 2 * set_cap : 1 << 16;
    uint64_t *grown = calloc(cap, sizeof *grown);
    if (!grown) { perror("calloc"); exit(1); }
    for (size_t i = 0; i < set_cap; i++)
      if (set[i]) {
        size_t j = (set[i] * 0x9E3779B97F4A7C15ull) & (cap - 1);
        while (grown[j]) j = (j + 1) & (cap - 1);
        grown[j] = set[i];
      }
    free(set); set = grown; set_cap = cap;
  }
  size_t j = (ino * 0x9E3779B97F4A7C15ull) & (set_cap - 1);
  while (set[j]) {
    if (set[j] == ino) return 0;
    j = (j + 1) & (set_cap - 1);
  }
  set[j] = ino; set_len++;
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: fanotify_opens MOUNTPOINT PREFIX READY_FILE\n"); return 2; }
  const char *prefix = argv[2];
  size_t prefix_len = strlen(prefix);
  int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_UNLIMITED_QUEUE | FAN_NONBLOCK | FAN_CLOEXEC,
                          O_RDONLY | O_LARGEFILE | O_CLOEXEC | O_NOATIME);
  if (fan < 0) { perror("fanotify_init"); return 1; }
  if (fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN | FAN_ONDIR, AT_FDCWD,
                    argv[1]) < 0) {
    perror("fanotify_mark");
    return 1;
  }
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int ready = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (ready >= 0) close(ready);

  unsigned long long regular = 0, dirs = 0, other = 0, overflow = 0;
  static char buf[256 * 1024] __attribute__((aligned(8)));
  char link[64], path[PATH_MAX];
  int draining = 0;
  for (;;) {
    if (stop && !draining) draining = 1;
    if (!draining) {
      struct pollfd p = {fan, POLLIN, 0};
      poll(&p, 1, 200);
    }
    ssize_t len = read(fan, buf, sizeof buf);
    if (len <= 0) {
      if (len < 0 && errno != EAGAIN && errno != EINTR) { perror("read"); return 1; }
      if (draining) break;
      continue;
    }
    for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, len);
         m = FAN_EVENT_NEXT(m, len)) {
      if (m->mask & FAN_Q_OVERFLOW) { overflow++; continue; }
      if (m->fd < 0) continue;
      snprintf(link, sizeof link, "/proc/self/fd/%d", m->fd);
      ssize_t n = readlink(link, path, sizeof path - 1);
      if (n > 0) {
        path[n] = 0;
        if ((size_t)n >= prefix_len && memcmp(path, prefix, prefix_len) == 0 &&
            (path[prefix_len] == 0 || path[prefix_len] == '/')) {
          struct stat st;
          if (fstat(m->fd, &st) != 0) other++;
          else if (S_ISREG(st.st_mode)) { regular++; set_add(st.st_ino); }
          else if (S_ISDIR(st.st_mode)) dirs++;
          else other++;
        }
      }
      close(m->fd);
    }
  }
  printf("{\"regular_opens\": %llu, \"directory_opens\": %llu, \"other_opens\": %llu, "
         "\"distinct_regular\": %zu, \"queue_overflows\": %llu}\n",
         regular, dirs, other, set_len, overflow);
  return 0;
}
