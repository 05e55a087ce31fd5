// The process environment as a lookup function, so the launcher parsers are pure and their
// tests are tables (a map) rather than setenv() calls.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace imgcast::cli::launch {

// The value of a variable, nullopt when it is unset. An empty value counts as unset: launchers
// export empty variables, and an empty node list or rank is never meaningful.
using Environment = std::function<std::optional<std::string>(std::string_view name)>;

// This process's environment (getenv).
Environment process_environment();
// A fixed table (tests, and the SPANK plugin's variables).
Environment table_environment(std::map<std::string, std::string, std::less<>> table);

// Parses a non-negative decimal integer variable; nullopt when unset. Throws InputError naming
// the variable when it is set but not a number below `limit`.
std::optional<long> integer_variable(const Environment& env, std::string_view name, long limit);

}  // namespace imgcast::cli::launch
