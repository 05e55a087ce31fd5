// A one-job resource manager for tests, built on libpmix's server API: it registers one
// namespace whose single process (rank 0) runs on HOSTNAME, with the allocation given on the
// command line as PMIX_ALLOCATED_NODELIST (and the job's node map as the regex
// PMIx_generate_regex makes, the way a real RM registers it), then runs CMD as that process and
// returns its exit status. It stands in for an RM that gives the allocation key (PRRTE, Flux),
// which Debian 12 does not package: Open MPI 4.1's mpirun and Slurm's mpi/pmix give
// PMIX_NODE_LIST only, the nodes that run the job's processes.
//
//   pmix_test_server HOSTNAME ALLOCATED_NODELIST|- -- CMD ARGS...
#include <pmix.h>
#include <pmix_server.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

std::atomic<bool> g_done{false};
std::atomic<int> g_status{PMIX_SUCCESS};

void op_done(pmix_status_t status, void*) {
  g_status = status;
  g_done = true;
}

// The server calls back from its own progress thread.
bool wait_done(const char* what) {
  for (int i = 0; i < 1000 && !g_done; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const bool ok = g_done && g_status == PMIX_SUCCESS;
  if (!ok)
    std::fprintf(stderr, "pmix_test_server: %s: %s\n", what, PMIx_Error_string(g_status));
  g_done = false;
  return ok;
}

bool check(pmix_status_t rc, const char* what) {
  if (rc != PMIX_SUCCESS)
    std::fprintf(stderr, "pmix_test_server: %s: %s\n", what, PMIx_Error_string(rc));
  return rc == PMIX_SUCCESS;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || std::strcmp(argv[3], "--") != 0) {
    std::fprintf(stderr, "usage: pmix_test_server HOSTNAME ALLOCATED_NODELIST|- -- CMD...\n");
    return 2;
  }
  const std::string hostname = argv[1];
  const std::string allocated = argv[2];
  char tmpdir[] = "/tmp/imgcast-pmix-server.XXXXXX";
  if (::mkdtemp(tmpdir) == nullptr)
    return 2;
  // The server's rendezvous files go here; removed on every way out.
  struct RemoveAtExit {
    const char* path;
    ~RemoveAtExit() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  } remove_tmpdir{tmpdir};

  pmix_server_module_t module;
  std::memset(&module, 0, sizeof module);  // no host callbacks: the job only reads its info
  pmix_info_t init_info[2];
  PMIX_INFO_LOAD(&init_info[0], PMIX_SERVER_TMPDIR, tmpdir, PMIX_STRING);
  PMIX_INFO_LOAD(&init_info[1], PMIX_SYSTEM_TMPDIR, tmpdir, PMIX_STRING);
  if (!check(PMIx_server_init(&module, init_info, 2), "PMIx_server_init"))
    return 2;

  char* node_regex = nullptr;
  char* ppn_regex = nullptr;
  // One field per node in both maps: the job's one node, HOSTNAME, holds rank 0.
  if (!check(PMIx_generate_regex(hostname.c_str(), &node_regex), "PMIx_generate_regex") ||
      !check(PMIx_generate_ppn("0", &ppn_regex), "PMIx_generate_ppn"))
    return 2;
  std::fprintf(stderr, "pmix_test_server: node map %s registered as '%s'\n", hostname.c_str(),
               node_regex);

  const char* nspace = "imgcast-test.1";
  std::uint32_t one = 1;
  std::uint32_t zero32 = 0;
  pmix_rank_t rank0 = 0;
  std::uint16_t zero16 = 0;
  pmix_data_array_t* proc_data = nullptr;
  PMIX_DATA_ARRAY_CREATE(proc_data, 5, PMIX_INFO);
  auto* pd = static_cast<pmix_info_t*>(proc_data->array);
  PMIX_INFO_LOAD(&pd[0], PMIX_RANK, &rank0, PMIX_PROC_RANK);
  PMIX_INFO_LOAD(&pd[1], PMIX_HOSTNAME, hostname.c_str(), PMIX_STRING);
  PMIX_INFO_LOAD(&pd[2], PMIX_LOCAL_RANK, &zero16, PMIX_UINT16);
  PMIX_INFO_LOAD(&pd[3], PMIX_NODE_RANK, &zero16, PMIX_UINT16);
  PMIX_INFO_LOAD(&pd[4], PMIX_NODEID, &zero32, PMIX_UINT32);

  std::vector<pmix_info_t> job(11);
  std::size_t n = 0;
  PMIX_INFO_LOAD(&job[n++], PMIX_UNIV_SIZE, &one, PMIX_UINT32);
  PMIX_INFO_LOAD(&job[n++], PMIX_JOB_SIZE, &one, PMIX_UINT32);
  PMIX_INFO_LOAD(&job[n++], PMIX_MAX_PROCS, &one, PMIX_UINT32);
  PMIX_INFO_LOAD(&job[n++], PMIX_NODE_MAP, node_regex, PMIX_REGEX);
  PMIX_INFO_LOAD(&job[n++], PMIX_PROC_MAP, ppn_regex, PMIX_REGEX);
  PMIX_INFO_LOAD(&job[n++], PMIX_LOCAL_SIZE, &one, PMIX_UINT32);
  PMIX_INFO_LOAD(&job[n++], PMIX_LOCAL_PEERS, "0", PMIX_STRING);
  PMIX_INFO_LOAD(&job[n++], PMIX_LOCALLDR, &rank0, PMIX_PROC_RANK);
  PMIX_INFO_LOAD(&job[n++], PMIX_PROC_DATA, proc_data, PMIX_DATA_ARRAY);
  if (allocated != "-")
    PMIX_INFO_LOAD(&job[n++], PMIX_ALLOCATED_NODELIST, allocated.c_str(), PMIX_STRING);
  const bool registered =
      check(PMIx_server_register_nspace(nspace, 1, job.data(), n, op_done, nullptr),
            "PMIx_server_register_nspace") &&
      wait_done("register_nspace");
  // The server keeps its own copies (and the sanitizer run checks for leaks).
  for (std::size_t i = 0; i < n; ++i)
    PMIX_INFO_DESTRUCT(&job[i]);
  PMIX_DATA_ARRAY_FREE(proc_data);
  std::free(node_regex);
  std::free(ppn_regex);
  if (!registered)
    return 2;

  pmix_proc_t proc;
  PMIX_LOAD_PROCID(&proc, nspace, 0);
  if (!check(PMIx_server_register_client(&proc, ::getuid(), ::getgid(), nullptr, op_done, nullptr),
             "PMIx_server_register_client") ||
      !wait_done("register_client"))
    return 2;

  // The client's environment: ours plus what the server adds (PMIX_NAMESPACE, PMIX_RANK,
  // PMIX_SERVER_URI*, ...).
  std::vector<char*> base;
  for (char** e = environ; *e != nullptr; ++e)
    base.push_back(::strdup(*e));
  base.push_back(nullptr);
  char** env = static_cast<char**>(std::malloc(base.size() * sizeof(char*)));
  std::memcpy(env, base.data(), base.size() * sizeof(char*));
  if (!check(PMIx_server_setup_fork(&proc, &env), "PMIx_server_setup_fork"))
    return 2;

  const pid_t child = ::fork();
  if (child == 0) {
    ::execvpe(argv[4], argv + 4, env);
    std::perror(argv[4]);
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  for (char** e = env; *e != nullptr; ++e)
    std::free(*e);
  std::free(env);
  PMIx_server_deregister_client(&proc, nullptr, nullptr);
  PMIx_server_finalize();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
