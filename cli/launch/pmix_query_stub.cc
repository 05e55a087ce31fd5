// query_pmix_job() when this build has no PMIx (libpmix-dev was not found, or
// IMGCAST_WITH_PMIX=OFF): a PMIx job is still recognised, and refused with a reason.
#include "cli/launch/pmix_allocation.h"
#include "replicator/errors.h"

namespace imgcast::cli::launch {

bool pmix_built_in() noexcept { return false; }

PmixJob query_pmix_job() {
  throw replicator::InputError(
      "this is a PMIx job (PMIX_NAMESPACE is set) but PMIx support not built in (rebuild with "
      "libpmix-dev installed): pass --hosts");
}

}  // namespace imgcast::cli::launch
