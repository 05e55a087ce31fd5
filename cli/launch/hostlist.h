// Slurm's hostlist syntax, as in SLURM_JOB_NODELIST: "node[001-004,007],gpu[1-2],login".
// A bracket group holds numbers and ranges; a range keeps the zero padding of its first number
// ("[08-11]" -> 08 09 10 11); several groups in one name multiply ("r[1-2]n[1-2]" -> r1n1 r1n2
// r2n1 r2n2). Commas inside brackets belong to the group; commas outside separate names.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace imgcast::cli::launch {

// The most hosts one expression may name: a typo like "n[1-100000000]" fails instead of
// allocating gigabytes.
inline constexpr std::size_t kMaxHosts = 1u << 20;

// Expands `expression` in order (duplicates kept: the caller checks them). Throws
// replicator::InputError naming `origin` (e.g. "SLURM_JOB_NODELIST") and the fault for an empty
// expression or name, an unbalanced or nested bracket, an empty group, a non-number, a reversed
// range, or more than kMaxHosts names.
std::vector<std::string> expand_hostlist(std::string_view expression, std::string_view origin);

}  // namespace imgcast::cli::launch
