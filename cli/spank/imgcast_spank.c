/*
 * imgcast SPANK plugin: `srun --imgcast=SRC:DST[,key=value...]` (or `#SBATCH --imgcast=...`)
 * stages SRC as DST on every node of the step before its tasks start, reading SRC once, and
 * exports IMGCAST_PATH=DST to the tasks. SRC may be an image file or a directory; several
 * sources, `--imgcast=SRC:SRC...:DST`, go into the directory DST in one transfer (each by its
 * last component, as `imgcast replicate SRC... DST`). A ':' or ',' inside a path is written
 * '\:' or '\,' (and a backslash '\\').
 *
 * It runs `imgcast hook` from slurm_spank_user_init: that callback runs in slurmstepd once per
 * node of a step, as the job's user, before any task is forked; a failure there fails the step.
 * The batch and extern steps are skipped (they run on one node, or on no task); the first real
 * step of a job stages, and later steps of the same job find the copy recorded and return at
 * once (imgcast hook's per-node state, keyed by the job id).
 *
 * plugstack.conf:
 *   optional /usr/lib/x86_64-linux-gnu/slurm-wlm/imgcast_spank.so imgcast=/usr/bin/imgcast
 *
 * Options after DST, comma-separated: transport=, chunk-size=, topology=, timeout=, mode=,
 * link-mbit=, cache-dir=, cache-max= (passed to imgcast hook as --key value), and cache=yes
 * (imgcast hook --cache: the image goes through each node's cache, pinned for the step; cache=no
 * is the default, and any other value is refused).
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h> /* setgroups */
#include <limits.h>
#include <linux/capability.h>
#include <signal.h>
#include <slurm/slurm.h>
#include <slurm/spank.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h> /* flock */
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

SPANK_PLUGIN(imgcast, 1)

#define MAX_OPTIONS 8
#define MAX_SOURCES 16
#define MAX_TEXT 4096

/* What --imgcast asked for; no source: not asked. The sources point into source_text. */
static char source_text[MAX_TEXT];
static const char* sources[MAX_SOURCES];
static int source_count;
static char destination[MAX_TEXT];
static char option_keys[MAX_OPTIONS][64];
static char option_values[MAX_OPTIONS][256];
static int option_count;
static char imgcast_program[PATH_MAX] = "";
/* Set by user_init in slurmstepd; the tasks, forked from it, inherit it. */
static int staging_failed;

static const char* const allowed_keys[] = {"transport", "chunk-size", "topology", "timeout",
                                           "mode",      "link-mbit",  "cache",    "cache-dir",
                                           "cache-max"};
/* cache=yes: the node cache's entry DST was placed from, pinned (a shared flock on DST, the
 * entry's own inode when it is a hard link) from staging until the step ends (slurm_spank_exit;
 * a slurmstepd that dies drops it with its descriptors). */
static int cache_pin_fd = -1;

/* cache=VALUE: 1 for yes/1/true, 0 for no/0/false, -1 for anything else (refused at parse time,
 * so a typo such as cache=ye fails the submission instead of quietly staging without the cache). */
static int cache_value(const char* value) {
  if (strcmp(value, "yes") == 0 || strcmp(value, "1") == 0 || strcmp(value, "true") == 0)
    return 1;
  if (strcmp(value, "no") == 0 || strcmp(value, "0") == 0 || strcmp(value, "false") == 0)
    return 0;
  return -1;
}

static int cache_requested(void) {
  for (int i = 0; i < option_count; ++i) {
    if (strcmp(option_keys[i], "cache") == 0)
      return cache_value(option_values[i]) == 1;
  }
  return 0;
}

/* Copies one field of `*cursor` into out (at most out_size bytes with its NUL), up to the first
 * unescaped character of `stops` or the end; "\:", "\," and "\\" stand for ':', ',' and '\'.
 * Sets *stopped to the character that ended it ('\0': the end) and moves *cursor past it.
 * Returns 0, -1 for another backslash sequence, -2 when the field does not fit. */
static int next_field(const char** cursor, char* out, size_t out_size, const char* stops,
                      char* stopped) {
  const char* in = *cursor;
  size_t used = 0;
  for (;;) {
    char c = *in;
    if (c == '\0' || strchr(stops, c) != NULL) {
      *stopped = c;
      *cursor = c == '\0' ? in : in + 1;
      out[used] = '\0';
      return 0;
    }
    if (c == '\\') {
      c = in[1];
      if (c != ':' && c != ',' && c != '\\')
        return -1;
      ++in;
    }
    if (used + 1 >= out_size)
      return -2;
    out[used++] = c;
    ++in;
  }
}

/* Parses "SRC[:SRC...]:DST[,key=value...]" into the globals; returns 0, or -1 after one
 * slurm_error line. */
static int parse_request(const char* text) {
  static const char usage[] =
      "expected SRC[:SRC...]:DST[,key=value...] with absolute paths ('\\:' and '\\,' for a ':' "
      "or ',' in a path), e.g. --imgcast=/lustre/app.sif:/lustre/data:/tmp/job";
  source_count = 0;
  option_count = 0;
  if (text == NULL || strlen(text) >= sizeof source_text) {
    slurm_error("imgcast: --imgcast: %s (shorter than %d bytes)", usage, MAX_TEXT);
    return -1;
  }
  /* Paths: SRC:...:DST, NUL-separated in source_text (unescaping only shortens them). */
  const char* paths[MAX_SOURCES + 1];
  int count = 0;
  size_t used = 0;
  const char* cursor = text;
  char stop = ':';
  while (stop == ':') {
    if (count == MAX_SOURCES + 1) {
      slurm_error("imgcast: --imgcast=%s: at most %d sources before DST", text, MAX_SOURCES);
      return -1;
    }
    char* field = source_text + used;
    const int got = next_field(&cursor, field, sizeof source_text - used, ":,", &stop);
    if (got != 0) {
      slurm_error("imgcast: --imgcast=%s: %s", text,
                  got == -1 ? "a backslash escapes only ':', ',' or '\\'" : usage);
      return -1;
    }
    paths[count++] = field;
    used += strlen(field) + 1;
  }
  if (count < 2 || paths[0][0] == '\0' || paths[count - 1][0] == '\0') {
    slurm_error("imgcast: --imgcast=%s: %s", text, usage);
    return -1;
  }
  for (int i = 0; i < count; ++i) {
    if (paths[i][0] != '/') {
      slurm_error("imgcast: --imgcast=%s: '%s' is not an absolute path (%s)", text, paths[i],
                  usage);
      return -1;
    }
  }
  if (strchr(paths[count - 1], '%') != NULL) {
    slurm_error("imgcast: --imgcast=%s: DST must not hold %% (%s)", text, paths[count - 1]);
    return -1;
  }
  /* Options: key=value, comma-separated; an empty one only at the end. */
  int options = 0;
  while (stop == ',') {
    char item[64 + 256];
    const int got = next_field(&cursor, item, sizeof item, ",", &stop);
    if (got == 0 && item[0] == '\0' && stop == '\0')
      break; /* a trailing comma */
    char* equals = got == 0 ? strchr(item, '=') : NULL;
    int known = 0;
    if (equals != NULL) {
      *equals = '\0';
      for (size_t i = 0; i < sizeof allowed_keys / sizeof allowed_keys[0]; ++i)
        known |= strcmp(item, allowed_keys[i]) == 0;
    }
    if (!known || options == MAX_OPTIONS || strlen(item) >= 64 || strlen(equals + 1) >= 256 ||
        equals[1] == '\0') {
      slurm_error("imgcast: --imgcast option '%s' is not one of transport=, chunk-size=, "
                  "topology=, timeout=, mode=, link-mbit=, cache=yes, cache-dir=, cache-max=",
                  got == 0 ? item : "(too long or a bad backslash)");
      return -1;
    }
    if (strcmp(item, "cache") == 0 && cache_value(equals + 1) < 0) {
      slurm_error("imgcast: --imgcast option cache=%s: the value is yes or no", equals + 1);
      return -1;
    }
    strcpy(option_keys[options], item);
    strcpy(option_values[options], equals + 1);
    ++options;
  }
  strcpy(destination, paths[count - 1]);
  for (int i = 0; i < count - 1; ++i)
    sources[i] = paths[i];
  source_count = count - 1;
  option_count = options;
  if (cache_requested() && source_count > 1) {
    slurm_error("imgcast: --imgcast=%s: cache=yes takes one image file (SRC:DST), not %d sources",
                text, source_count);
    source_count = 0;
    return -1;
  }
  return 0;
}

static int on_option(int val, const char* optarg, int remote) {
  (void)val;
  (void)remote;
  return parse_request(optarg);
}

/* Registered with spank_option_register (not the spank_options table) so that sbatch and
 * salloc (the "allocator" context) offer it too. */
static struct spank_option imgcast_option = {
    "imgcast", "SRC[:SRC...]:DST[,key=value...]",
    "Stage SRC as DST on every node of each step, reading SRC once (imgcast); several sources "
    "(files or directories) go into the directory DST; the tasks get IMGCAST_PATH=DST",
    1, 0, on_option};

/* Without imgcast= in plugstack.conf: the configured install path, then the usual places. */
static void choose_default_program(void) {
  static const char* const candidates[] = {IMGCAST_DEFAULT_PROGRAM, "/usr/bin/imgcast",
                                           "/usr/local/bin/imgcast"};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; ++i) {
    if (access(candidates[i], X_OK) == 0) {
      snprintf(imgcast_program, sizeof imgcast_program, "%s", candidates[i]);
      return;
    }
  }
  snprintf(imgcast_program, sizeof imgcast_program, "%s", IMGCAST_DEFAULT_PROGRAM);
}

int slurm_spank_init(spank_t sp, int ac, char** av) {
  if (spank_option_register(sp, &imgcast_option) != ESPANK_SUCCESS) {
    slurm_error("imgcast: cannot register --imgcast");
    return -1;
  }
  for (int i = 0; i < ac; ++i) {
    if (strncmp(av[i], "imgcast=", 8) == 0 && strlen(av[i] + 8) < sizeof imgcast_program) {
      strcpy(imgcast_program, av[i] + 8);
    } else {
      slurm_error("imgcast: unknown plugstack.conf argument '%s' (use imgcast=/path/to/imgcast)",
                  av[i]);
      return -1;
    }
  }
  if (imgcast_program[0] == '\0')
    choose_default_program();
  return 0;
}

/* Who the forked imgcast becomes: the job's user, whole. */
struct job_user {
  uid_t uid;
  gid_t gid;
  gid_t* groups; /* the job's supplementary groups, from Slurm */
  int group_count;
};

/* True when the calling process holds no capability at all (permitted, effective, inheritable). */
static int holds_no_capability(void) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &header, data) != 0)
    return 0;
  for (int i = 0; i < 2; ++i) {
    if (data[i].permitted != 0 || data[i].effective != 0 || data[i].inheritable != 0)
      return 0;
  }
  return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_SETUID, 0, 0) <= 0;
}

/* In the forked child, before exec: become the job's user for real. slurmstepd calls user_init
 * with only the effective ids dropped (seteuid/setegid): the real and saved uid stay 0, so an
 * imgcast started from here, which parses network input, could seteuid(0) back and holds a full
 * permitted capability set. Regain root for a moment, set every id and the groups, then check
 * that nothing of root is left. Returns 0, or -1 with `why` filled. */
static int become_job_user(const struct job_user* user, char* why, size_t why_size) {
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (geteuid() != 0 && seteuid(0) != 0) {
    /* Not started by root (a test slurmd, or a site running slurmd unprivileged): nothing to
     * drop if the process already is the job's user through and through. */
    if (getresuid(&ruid, &euid, &suid) == 0 && ruid == user->uid && euid == user->uid &&
        suid == user->uid && user->uid != 0)
      return 0;
    snprintf(why, why_size, "cannot regain the privilege to drop to uid %u: %s",
             (unsigned)user->uid, strerror(errno));
    return -1;
  }
  if (setgroups((size_t)user->group_count, user->groups) != 0) {
    snprintf(why, why_size, "setgroups for uid %u failed: %s", (unsigned)user->uid,
             strerror(errno));
    return -1;
  }
  if (setresgid(user->gid, user->gid, user->gid) != 0) {
    snprintf(why, why_size, "setresgid(%u) failed: %s", (unsigned)user->gid, strerror(errno));
    return -1;
  }
  /* Nothing of root's capabilities may outlive the uid change, whatever slurmstepd set. */
  prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (setresuid(user->uid, user->uid, user->uid) != 0) {
    snprintf(why, why_size, "setresuid(%u) failed: %s", (unsigned)user->uid, strerror(errno));
    return -1;
  }
  if (getresuid(&ruid, &euid, &suid) != 0 || getresgid(&rgid, &egid, &sgid) != 0 ||
      ruid != user->uid || euid != user->uid || suid != user->uid || rgid != user->gid ||
      egid != user->gid || sgid != user->gid) {
    snprintf(why, why_size, "the ids did not all change to uid %u gid %u", (unsigned)user->uid,
             (unsigned)user->gid);
    return -1;
  }
  if (user->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0 || !holds_no_capability())) {
    snprintf(why, why_size, "root's privilege survived the drop to uid %u", (unsigned)user->uid);
    return -1;
  }
  /* imgcast never needs to gain privilege: a setuid program it might run gains none either. */
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  return 0;
}

/* The child's standard input is /dev/null, its output the pipe, and no other descriptor of
 * slurmstepd's (sockets to slurmd, the job's credential files) reaches imgcast. */
static void keep_only_standard_fds(int output_fd) {
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd >= 0)
    dup2(null_fd, STDIN_FILENO);
  dup2(output_fd, STDOUT_FILENO);
  dup2(output_fd, STDERR_FILENO);
  close_range(3, ~0U, 0);
}

/* Runs imgcast hook and waits; its standard error comes back through a pipe so that a failure
 * reaches the user as slurm_error lines instead of vanishing in slurmstepd. */
static int run_hook(spank_t sp, const struct job_user* user, uint32_t job, uint32_t step,
                    uint32_t node, uint32_t nodes) {
  char job_text[32], step_text[32], node_text[16], nodes_text[16];
  snprintf(job_text, sizeof job_text, "%u", job);
  snprintf(step_text, sizeof step_text, "%u.%u", job, step);
  snprintf(node_text, sizeof node_text, "%u", node);
  snprintf(nodes_text, sizeof nodes_text, "%u", nodes);
  char rendezvous[PATH_MAX] = "";
  if (spank_getenv(sp, "SLURM_SUBMIT_DIR", rendezvous, sizeof rendezvous) != ESPANK_SUCCESS &&
      spank_getenv(sp, "PWD", rendezvous, sizeof rendezvous) != ESPANK_SUCCESS) {
    strcpy(rendezvous, "/tmp");
  }
  char option_flags[MAX_OPTIONS][80];
  const char* argv[32 + MAX_SOURCES + 2 * MAX_OPTIONS];
  int n = 0;
  argv[n++] = imgcast_program;
  argv[n++] = "-q";
  argv[n++] = "hook";
  for (int i = 0; i < source_count; ++i)
    argv[n++] = sources[i]; /* one argv word each: SRC... DST, as imgcast replicate takes them */
  argv[n++] = destination;
  argv[n++] = "--rank";
  argv[n++] = node_text;
  argv[n++] = "--nodes";
  argv[n++] = nodes_text;
  argv[n++] = "--job-id";
  argv[n++] = job_text;
  argv[n++] = "--step-id";
  argv[n++] = step_text;
  argv[n++] = "--rendezvous";
  argv[n++] = rendezvous;
  for (int i = 0; i < option_count; ++i) {
    snprintf(option_flags[i], sizeof option_flags[i], "--%.63s", option_keys[i]);
    if (strcmp(option_keys[i], "cache") == 0) {
      if (cache_requested())
        argv[n++] = option_flags[i]; /* a flag: --cache, no value */
      continue;
    }
    argv[n++] = option_flags[i];
    argv[n++] = option_values[i];
  }
  argv[n] = NULL;

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    slurm_error("imgcast: cannot create a pipe: %s", strerror(errno));
    return -1;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    slurm_error("imgcast: cannot fork: %s", strerror(errno));
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return -1;
  }
  if (pid == 0) {
    keep_only_standard_fds(pipe_fds[1]);
    signal(SIGPIPE, SIG_DFL);
    char why[256];
    if (become_job_user(user, why, sizeof why) != 0) {
      dprintf(STDERR_FILENO, "refusing to run %s as more than the job's user: %s\n",
              imgcast_program, why);
      _exit(4);
    }
    execv(imgcast_program, (char* const*)argv);
    dprintf(STDERR_FILENO, "cannot run %s: %s (set imgcast= in plugstack.conf)\n",
            imgcast_program, strerror(errno));
    _exit(1);
  }
  close(pipe_fds[1]);
  char output[MAX_TEXT];
  size_t used = 0;
  for (;;) {
    const ssize_t got = read(pipe_fds[0], output + used, sizeof output - 1 - used);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      break;
    used += (size_t)got;
    if (used == sizeof output - 1)
      used = 0; /* keep the tail: the last lines say why */
  }
  output[used] = '\0';
  close(pipe_fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  for (char* line = strtok(output, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    if (strncmp(line, "imgcast: ", 9) == 0)
      line += 9;
    slurm_error("imgcast: %s", line);
  }
  slurm_error("imgcast: staging %s%s as %s failed on node %u (exit %d); the step does not start",
              sources[0], source_count > 1 ? " and the other sources" : "", destination, node,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return -1;
}

int slurm_spank_user_init(spank_t sp, int ac, char** av) {
  (void)ac;
  (void)av;
  if (source_count == 0 || spank_remote(sp) != 1)
    return 0;
  uint32_t job = 0, step = 0, node = 0, nodes = 0;
  if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS ||
      spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS ||
      spank_get_item(sp, S_JOB_NODEID, &node) != ESPANK_SUCCESS ||
      spank_get_item(sp, S_JOB_NNODES, &nodes) != ESPANK_SUCCESS) {
    slurm_error("imgcast: cannot read the step's job id, node id or node count from Slurm");
    return -1;
  }
  struct job_user user = {0, 0, NULL, 0};
  if (spank_get_item(sp, S_JOB_UID, &user.uid) != ESPANK_SUCCESS ||
      spank_get_item(sp, S_JOB_GID, &user.gid) != ESPANK_SUCCESS ||
      spank_get_item(sp, S_JOB_SUPPLEMENTARY_GIDS, &user.groups, &user.group_count) !=
          ESPANK_SUCCESS) {
    slurm_error("imgcast: cannot read the job's user and groups from Slurm");
    return -1;
  }
  /* Slurm gave no list: keep the groups slurmstepd set for the user before calling us (read
   * here, not in the child: slurmstepd has threads, and the child only calls what is safe). */
  static gid_t current_groups[NGROUPS_MAX];
  if (user.group_count <= 0) {
    const int count = getgroups(NGROUPS_MAX, current_groups);
    user.groups = current_groups;
    user.group_count = count > 0 ? count : 0;
  }
  /* The batch step runs on one node of many and the extern step starts no task: stage for the
   * steps that run the tasks. */
  if (step == SLURM_BATCH_SCRIPT || step == SLURM_EXTERN_CONT)
    return 0;
  if (run_hook(sp, &user, job, step, node, nodes) != 0 ||
      spank_setenv(sp, "IMGCAST_PATH", destination, 1) != ESPANK_SUCCESS) {
    /* Not failed here: Slurm 22.05 reports a user_init failure to srun as a launch failure and
     * srun then exits 0. Each task fails instead (task_init), so the step exits non-zero. */
    staging_failed = 1;
  } else if (cache_requested() && cache_pin_fd < 0) {
    /* As the job's user (user_init runs with its effective ids): never through a symlink, and
     * never blocking on a FIFO someone put there. */
    cache_pin_fd = open(destination, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (cache_pin_fd >= 0 && flock(cache_pin_fd, LOCK_SH | LOCK_NB) != 0) {
      close(cache_pin_fd);
      cache_pin_fd = -1;
    }
    if (cache_pin_fd < 0)
      slurm_info("imgcast: %s is not pinned in the node cache for this step: %s", destination,
                 strerror(errno));
  }
  return 0;
}

int slurm_spank_exit(spank_t sp, int ac, char** av) {
  (void)sp;
  (void)ac;
  (void)av;
  if (cache_pin_fd >= 0) {
    close(cache_pin_fd); /* the step is over: its image may be evicted again */
    cache_pin_fd = -1;
  }
  return 0;
}

int slurm_spank_task_init(spank_t sp, int ac, char** av) {
  (void)sp;
  (void)ac;
  (void)av;
  if (staging_failed) {
    slurm_error("imgcast: %s was not staged on this node (see above); the task does not run",
                destination);
    return -1;
  }
  return 0;
}
