// The replicator uses the transport layer's UniqueFd for its files and directories.
#pragma once

#include "transport/unique_fd.h"

namespace imgcast::replicator {
using transport::UniqueFd;
}  // namespace imgcast::replicator
