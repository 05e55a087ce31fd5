// query_pmix_job() against the real PMIx client library (built when libpmix is found).
#include <fmt/format.h>
#include <pmix.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "cli/launch/pmix_allocation.h"
#include "replicator/errors.h"

namespace imgcast::cli::launch {

namespace {

using replicator::InputError;

// PMIx_Init blocks in its handshake when the URI names a socket that accepts and never answers
// (stale variables that now point at some other service), and none of its attributes bounds
// that (PMIX_TIMEOUT, PMIX_CONNECT_MAX_RETRIES tried: no effect in 4.2.2). So it runs on a
// thread of its own with a deadline; past it the thread is left behind (the process is about
// to exit with the error) and the connection is never used or finalized.
constexpr auto kInitDeadline = std::chrono::seconds(10);

struct InitResult {
  pmix_status_t status = PMIX_ERR_TIMEOUT;
  pmix_proc_t proc;
};

InitResult init_with_deadline() {
  auto promise = std::make_shared<std::promise<InitResult>>();
  std::future<InitResult> future = promise->get_future();
  std::thread([promise] {
    InitResult result;
    PMIX_PROC_CONSTRUCT(&result.proc);
    result.status = PMIx_Init(&result.proc, nullptr, 0);
    promise->set_value(result);
  }).detach();
  if (future.wait_for(kInitDeadline) != std::future_status::ready)
    return InitResult{};
  return future.get();
}

// PMIx_Init's connection: PMIx_Finalize when it goes out of scope (deleters never throw).
class Client {
 public:
  explicit Client(pmix_proc_t& me) {
    const InitResult result = init_with_deadline();
    status_ = result.status;
    me = result.proc;
  }
  ~Client() {
    if (status_ == PMIX_SUCCESS) {
      const pmix_status_t rc = PMIx_Finalize(nullptr, 0);
      if (rc != PMIX_SUCCESS)
        spdlog::debug("PMIx_Finalize: {}", PMIx_Error_string(rc));
    }
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  pmix_status_t status() const noexcept { return status_; }

 private:
  pmix_status_t status_ = PMIX_ERR_TIMEOUT;
};

struct ValueDeleter {
  void operator()(pmix_value_t* value) const noexcept { PMIX_VALUE_RELEASE(value); }
};
using Value = std::unique_ptr<pmix_value_t, ValueDeleter>;

// One key of `proc`, nullopt when the server does not have it. The timeout bounds the wait
// should the server go and ask its host for a key it does not hold (job-level keys normally
// arrive with PMIx_Init and are answered locally).
Value get(const pmix_proc_t& proc, const char* key) {
  std::array<pmix_info_t, 1> info;
  int seconds = 10;
  PMIX_INFO_LOAD(&info[0], PMIX_TIMEOUT, &seconds, PMIX_INT);
  pmix_value_t* raw = nullptr;
  const pmix_status_t rc = PMIx_Get(&proc, key, info.data(), info.size(), &raw);
  Value value(raw);
  PMIX_INFO_DESTRUCT(&info[0]);
  if (rc != PMIX_SUCCESS) {
    spdlog::debug("PMIx_Get({}, rank {}): {}", key, proc.rank, PMIx_Error_string(rc));
    return nullptr;
  }
  return value;
}

std::optional<std::string> get_string(const pmix_proc_t& proc, const char* key) {
  const Value value = get(proc, key);
  if (!value || value->type != PMIX_STRING || value->data.string == nullptr)
    return std::nullopt;
  return std::string(value->data.string);
}

std::optional<std::uint32_t> get_uint32(const pmix_proc_t& proc, const char* key) {
  const Value value = get(proc, key);
  if (!value || value->type != PMIX_UINT32)
    return std::nullopt;
  return value->data.uint32;
}

// A node list the library left in one of PMIx's own compressed forms ("pmix[...]", "blob:...",
// "raw:..."), which only the library can expand.
bool is_pmix_regex(std::string_view list) {
  return list.starts_with("pmix[") || list.starts_with("blob:") || list.starts_with("raw:");
}

}  // namespace

bool pmix_built_in() noexcept { return true; }

PmixJob query_pmix_job() {
  pmix_proc_t me;
  PMIX_PROC_CONSTRUCT(&me);
  const Client client(me);
  if (client.status() != PMIX_SUCCESS) {
    const std::string why = client.status() == PMIX_ERR_TIMEOUT
                                ? fmt::format("PMIx_Init: no answer in {} s", kInitDeadline.count())
                                : fmt::format("PMIx_Init: {}", PMIx_Error_string(client.status()));
    throw InputError(fmt::format(
        "PMIX_NAMESPACE is set but the PMIx server did not answer ({}): run imgcast inside that "
        "job, or name the nodes yourself (replicate --hosts, hook --nodes)",
        why));
  }
  PmixJob job;
  job.nspace = me.nspace;
  job.rank = me.rank;
  pmix_proc_t wildcard;
  PMIX_LOAD_PROCID(&wildcard, me.nspace, PMIX_RANK_WILDCARD);
  job.size = get_uint32(wildcard, PMIX_JOB_SIZE).value_or(1);
  job.hostname = get_string(me, PMIX_HOSTNAME).value_or("");
  if (job.hostname.empty()) {
    std::array<char, 256> name{};
    if (::gethostname(name.data(), name.size() - 1) == 0)
      job.hostname = name.data();
  }
  if (auto nodes = get_string(wildcard, PMIX_NODE_LIST)) {
    job.process_nodes = std::move(*nodes);
    if (is_pmix_regex(job.process_nodes)) {
      char* resolved = nullptr;
      if (PMIx_Resolve_nodes(me.nspace, &resolved) == PMIX_SUCCESS && resolved != nullptr)
        job.process_nodes = resolved;
      std::free(resolved);
    }
  }
  if (auto list = get_string(wildcard, PMIX_ALLOCATED_NODELIST)) {
    job.node_list = std::move(*list);
    job.node_list_key = "PMIX_ALLOCATED_NODELIST";
  } else if (!job.process_nodes.empty()) {
    job.node_list = job.process_nodes;
    job.node_list_key = "PMIX_NODE_LIST";
  } else {
    throw InputError(fmt::format(
        "the PMIx server of job {} gives neither PMIX_ALLOCATED_NODELIST nor PMIX_NODE_LIST: name "
        "the nodes yourself (replicate --hosts, hook --nodes)",
        job.nspace));
  }
  spdlog::debug("PMIx job {}: rank {} of {}, host '{}', {} = '{}', PMIX_NODE_LIST = '{}'",
                job.nspace, job.rank, job.size, job.hostname, job.node_list_key, job.node_list,
                job.process_nodes);
  return job;
}

}  // namespace imgcast::cli::launch
