# Backend switches take AUTO|ON|OFF: AUTO builds the backend when its library is found,
# ON makes a missing library a configure error, OFF leaves the backend out (the factory then
# reports it as "not built in").
set(IMGCAST_WITH_UCX AUTO CACHE STRING "Build the UCX transport (AUTO|ON|OFF)")
set(IMGCAST_WITH_VERBS AUTO CACHE STRING "Build the verbs transport (AUTO|ON|OFF)")
# PMIx allocation detection for `imgcast replicate` (libpmix), the same AUTO|ON|OFF rules.
set(IMGCAST_WITH_PMIX AUTO CACHE STRING "Detect PMIx allocations through libpmix (AUTO|ON|OFF)")
set_property(CACHE IMGCAST_WITH_UCX PROPERTY STRINGS AUTO ON OFF)
set_property(CACHE IMGCAST_WITH_PMIX PROPERTY STRINGS AUTO ON OFF)
set_property(CACHE IMGCAST_WITH_VERBS PROPERTY STRINGS AUTO ON OFF)
option(IMGCAST_BUILD_TESTS "Build the test suite" ON)
option(IMGCAST_BUILD_BENCHMARKS "Build the Google Benchmark micro benchmarks" ON)
option(IMGCAST_BUILD_FUZZERS "Build the libFuzzer targets (needs clang)" OFF)
# The suite's slow extras: a second build under ASan + UBSan, and the fuzzers for a bounded time.
option(IMGCAST_CI_EXTRAS "Add the sanitizer and fuzzing runs to the test suite" ON)
set(IMGCAST_LOG_LEVEL "SPDLOG_LEVEL_DEBUG" CACHE STRING
    "Compile-time spdlog level; per-chunk trace lines are compiled out above it")

foreach(opt IMGCAST_WITH_UCX IMGCAST_WITH_VERBS IMGCAST_WITH_PMIX)
  if(NOT ${opt} MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "${opt} must be AUTO, ON or OFF (got '${${opt}}')")
  endif()
endforeach()
