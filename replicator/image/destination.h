// Where a node's copy goes: one destination pattern on the command line names a path per node.
#pragma once

#include <string>
#include <string_view>

namespace imgcast::replicator {

// Expands "%r" (rank), "%h" (host) and "%%" in a destination, so one command line can name a
// different path per node (e.g. several "nodes" on one machine). Throws InputError for an unknown
// "%x" or a lone '%' at the end.
std::string expand_destination(std::string_view pattern, int rank, std::string_view host);

}  // namespace imgcast::replicator
