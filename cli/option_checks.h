// CLI11 validators for the options whose values imgcast otherwise checks only when a
// subcommand runs. Checked at parse time, a bad value is reported the same way wherever it
// came from, the command line or a config file (which main() then names); the run-time checks
// stay as they are, for the SPANK plugin and every other path.
#pragma once

#include <CLI/CLI.hpp>

namespace imgcast::cli {

// --transport: tcp, ucx, verbs or auto.
CLI::Validator transport_check();
// --chunk-size: auto, or a size within the chunk plan's bounds (parse_chunk_size).
CLI::Validator chunk_size_check();
// --mode: an octal mode up to 07777 (the setuid/setgid/sticky rule needs --allow-setid, so it
// stays with parse_mode() at run time).
CLI::Validator mode_check();
// A timeout in seconds, in (0, 86400] (parse_seconds).
CLI::Validator seconds_check();

}  // namespace imgcast::cli
