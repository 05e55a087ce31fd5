#!/usr/bin/env bash
# The test suite again, built with AddressSanitizer + UndefinedBehaviorSanitizer (the "asan"
# preset's flags, Debug), in its own build tree: unit, protocol, transport and the multi-process
# loopback tests. Left out: what needs the shared emulated cluster, Slurm or the package (they
# run in the main tree), the 100-run soak and the 240-agent descriptor-limit run (they run in the
# main tree; 240 sanitized processes need some 24 GB). Any sanitizer report
# fails the test (halt_on_error).
#   tests/sanitizers/run.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source=${1:?usage: run.sh SOURCE_DIR BUILD_DIR}
build=${2:?usage: run.sh SOURCE_DIR BUILD_DIR}
cmake -S "$source" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" \
  -DCMAKE_C_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" \
  -DIMGCAST_BUILD_BENCHMARKS=OFF -DIMGCAST_CI_EXTRAS=OFF > "$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
cmake --build "$build" > "$build.build.log" 2>&1 || { tail -50 "$build.build.log"; exit 1; }
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$source/tests/sanitizers/lsan.supp:print_suppressions=0
ctest --test-dir "$build" --output-on-failure -j2 \
  -E '^(launcher\.|perf\.|package\.|Transports/ClusterTest|Soak\.|DescriptorLimit\.Hundreds)'
