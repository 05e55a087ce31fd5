// The SPANK plugin's fork path, called the way slurmstepd calls it: the plugin is dlopen()ed
// into a process running as root, slurm_spank_init and the --imgcast option callback run as
// root, then the process drops only its *effective* ids and groups to the job's user
// (setgroups, setegid, seteuid: what slurmstepd does before spank_user_init) and calls
// slurm_spank_user_init. The program the plugin starts (spank_probe, in imgcast's place) reports
// its real, effective and saved ids, its capabilities and its open descriptors.
//
// This file is slurmstepd's side of the SPANK API: the functions below are the ones the plugin
// calls, exported from this executable (ENABLE_EXPORTS) so that dlopen() binds the plugin to
// them. The plugin itself is the real one, unchanged.
#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <slurm/spank.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

constexpr uid_t kJobUid = 65534;  // nobody
constexpr gid_t kJobGid = 65534;  // nogroup
gid_t job_groups[] = {kJobGid};
spank_option* registered = nullptr;
// Slurm's header spells the codes as int macros of an enum type.
constexpr auto kOk = static_cast<spank_err_t>(ESPANK_SUCCESS);

}  // namespace

extern "C" {

spank_err_t spank_option_register(spank_t, struct spank_option* option) {
  registered = option;
  return kOk;
}

int spank_remote(spank_t) { return 1; }

spank_err_t spank_get_item(spank_t, spank_item_t item, ...) {
  va_list args;
  va_start(args, item);
  spank_err_t result = kOk;
  switch (item) {
    case S_JOB_ID:
      *va_arg(args, uint32_t*) = 4242;
      break;
    case S_JOB_STEPID:
      *va_arg(args, uint32_t*) = 0;
      break;
    case S_JOB_NODEID:
      *va_arg(args, uint32_t*) = 0;
      break;
    case S_JOB_NNODES:
      *va_arg(args, uint32_t*) = 1;
      break;
    case S_JOB_UID:
      *va_arg(args, uid_t*) = kJobUid;
      break;
    case S_JOB_GID:
      *va_arg(args, gid_t*) = kJobGid;
      break;
    case S_JOB_SUPPLEMENTARY_GIDS:
      *va_arg(args, gid_t**) = job_groups;
      *va_arg(args, int*) = 1;
      break;
    default:
      result = static_cast<spank_err_t>(ESPANK_BAD_ARG);
  }
  va_end(args);
  return result;
}

spank_err_t spank_getenv(spank_t, const char*, char*, int) { return static_cast<spank_err_t>(ESPANK_ENV_NOEXIST); }

spank_err_t spank_setenv(spank_t, const char*, const char*, int) { return kOk; }

std::string last_error;  // the plugin's last slurm_error line

void slurm_error(const char* format, ...) {
  va_list args;
  va_start(args, format);
  char line[8192];
  va_list copy;
  va_copy(copy, args);
  std::vsnprintf(line, sizeof line, format, copy);
  va_end(copy);
  last_error = line;
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
  va_end(args);
}

void slurm_info(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
  va_end(args);
}

}  // extern "C"

namespace {

using UserInit = int (*)(spank_t, int, char**);

// slurmstepd's life, in a child: returns the exit code (0: the plugin let the task run).
// `sources`: the --imgcast text before DST (the report), with its trailing ':'.
int run_like_slurmstepd(const std::string& report,
                        const std::string& sources = "/lustre/app.sif:") {
  void* plugin = ::dlopen(IMGCAST_SPANK_PLUGIN, RTLD_NOW | RTLD_LOCAL);
  if (plugin == nullptr) {
    std::fprintf(stderr, "dlopen: %s\n", ::dlerror());
    return 10;
  }
  auto init = reinterpret_cast<UserInit>(::dlsym(plugin, "slurm_spank_init"));
  auto user_init = reinterpret_cast<UserInit>(::dlsym(plugin, "slurm_spank_user_init"));
  auto task_init = reinterpret_cast<UserInit>(::dlsym(plugin, "slurm_spank_task_init"));
  std::string program_arg = "imgcast=" SPANK_PROBE_PROGRAM;
  char* init_args[] = {program_arg.data()};
  if (init == nullptr || user_init == nullptr || task_init == nullptr ||
      init(nullptr, 1, init_args) != 0 || registered == nullptr) {
    return 11;
  }
  const std::string request = sources + report;
  if (registered->cb(registered->val, request.c_str(), 1) != 0)
    return 12;
  // A descriptor slurmstepd holds without close-on-exec (its sockets to slurmd are such).
  if (::open("/etc/hostname", O_RDONLY) < 0)
    return 13;
  // slurmstepd's privilege drop before spank_user_init: effective ids and groups only.
  if (::setgroups(1, job_groups) != 0 || ::setegid(kJobGid) != 0 || ::seteuid(kJobUid) != 0)
    return 14;
  if (user_init(nullptr, 0, nullptr) != 0)
    return 15;
  return task_init(nullptr, 0, nullptr) == 0 ? 0 : 16;
}

// The plugin loaded in this process, its --imgcast callback registered.
spank_option* loaded_option() {
  static spank_option* option = [] {
    void* plugin = ::dlopen(IMGCAST_SPANK_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    auto init = plugin ? reinterpret_cast<UserInit>(::dlsym(plugin, "slurm_spank_init")) : nullptr;
    std::string program_arg = "imgcast=" SPANK_PROBE_PROGRAM;
    char* init_args[] = {program_arg.data()};
    return init != nullptr && init(nullptr, 1, init_args) == 0 ? registered : nullptr;
  }();
  return option;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(SpankPrivilegeDrop, TheForkedProgramIsTheJobUserWithNoRootLeftAndOnlyStandardFds) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root: it plays slurmstepd, which drops from root to the job's user";
  char pattern[] = "/tmp/imgcast-spank-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::filesystem::path dir = pattern;
  ASSERT_EQ(::chown(dir.c_str(), kJobUid, kJobGid), 0);  // the probe writes its report here
  const auto report = dir / "report";

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0)
    ::_exit(run_like_slurmstepd(report));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);

  const std::string text = read_file(report);
  // Real, effective, saved (and filesystem) ids: all the job's user.
  EXPECT_NE(text.find("Uid:\t65534\t65534\t65534\t65534\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Gid:\t65534\t65534\t65534\t65534\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Groups:\t65534 \n"), std::string::npos) << text;
  EXPECT_NE(text.find("CapPrm:\t0000000000000000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("CapEff:\t0000000000000000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("CapAmb:\t0000000000000000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("NoNewPrivs:\t1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fds: 0 1 2\n"), std::string::npos) << text;
  std::filesystem::remove_all(dir);
}

// --imgcast=SRC[:SRC...]:DST[,key=value...]: what parses, and the one line for what does not.
TEST(SpankRequest, SeveralSourcesParseAndBadSpecsSayWhyInOneLine) {
  spank_option* option = loaded_option();
  ASSERT_NE(option, nullptr);
  const auto parses = [&](const char* text) { return option->cb(option->val, text, 0) == 0; };
  EXPECT_TRUE(parses("/lustre/app.sif:/tmp/app.sif"));
  EXPECT_TRUE(parses("/lustre/app.sif:/lustre/data:/lustre/env/:/tmp/job,transport=tcp"));
  EXPECT_TRUE(parses("/lustre/a\\:b.sif:/lustre/c\\,d:/tmp/job,timeout=60,"));
  EXPECT_TRUE(parses("/lustre/a.sif:/tmp/job,cache=yes"));
  EXPECT_TRUE(parses("/lustre/a.sif:/tmp/job,cache=no"));
  const std::pair<const char*, const char*> bad[] = {
      {"/lustre/app.sif", "expected SRC[:SRC...]:DST"},
      {"/lustre/app.sif:", "expected SRC[:SRC...]:DST"},
      {":/tmp/x", "expected SRC[:SRC...]:DST"},
      {"/lustre/a.sif:data:/tmp/job", "'data' is not an absolute path"},
      {"/lustre/a.sif::/tmp/job", "'' is not an absolute path"},
      {"/lustre/a.sif:/tmp/job%r", "DST must not hold %"},
      {"/lustre/a\\b.sif:/tmp/job", "a backslash escapes only"},
      {"/lustre/a.sif:/lustre/b:/tmp/job,cache=yes", "cache=yes takes one image file"},
      {"/lustre/a.sif:/tmp/job,bogus=1", "option 'bogus' is not one of"},
      {"/lustre/a.sif:/tmp/job,cache=ye", "cache=ye: the value is yes or no"},
      {"/a:/b:/c:/d:/e:/f:/g:/h:/i:/j:/k:/l:/m:/n:/o:/p:/q:/tmp/job", "at most 16 sources"},
  };
  for (const auto& [text, why] : bad) {
    last_error.clear();
    EXPECT_FALSE(parses(text)) << text;
    EXPECT_NE(last_error.find(why), std::string::npos) << text << " -> " << last_error;
    EXPECT_EQ(last_error.find('\n'), std::string::npos) << last_error;
  }
  EXPECT_EQ(option->cb(option->val, std::string(5000, '/').c_str(), 0), -1);
}

// Several sources reach imgcast hook as separate argv words, unescaped, before DST.
TEST(SpankRequest, SeveralSourcesAreSeparateWordsOfTheHook) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root: it plays slurmstepd, which drops from root to the job's user";
  char pattern[] = "/tmp/imgcast-spank-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::filesystem::path dir = pattern;
  ASSERT_EQ(::chown(dir.c_str(), kJobUid, kJobGid), 0);
  const auto report = dir / "report";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0)
    ::_exit(run_like_slurmstepd(report, "/lustre/app.sif:/lustre/my data\\:v2/:/lustre/x\\,y:"));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::string text = read_file(report);
  EXPECT_NE(text.find("paths: |/lustre/app.sif|/lustre/my data:v2/|/lustre/x,y|" +
                      report.string() + "|\n"),
            std::string::npos)
      << text;
  std::filesystem::remove_all(dir);
}

}  // namespace
