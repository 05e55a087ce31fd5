#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, AddressSanitizer and UndefinedBehaviorSanitizer (every
# library instrumented), and runs each for FUZZ_SECONDS (default 60) on a copy of its seed
# corpus. Prints "fuzz TARGET: N runs in S s" per target; exits non-zero if any target crashes.
#
#   fuzz/run.sh [BUILD_DIR (build-fuzz)]      FUZZ_SECONDS=60
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
targets=(fuzz_frame_header fuzz_region_descriptor fuzz_messages fuzz_job_secret fuzz_verbs_wire
         fuzz_tree_manifest fuzz_two_halves fuzz_entry_record)

cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fsanitize-address-use-after-scope" \
  -DIMGCAST_BUILD_FUZZERS=ON -DIMGCAST_BUILD_TESTS=OFF -DIMGCAST_BUILD_BENCHMARKS=OFF \
  -DIMGCAST_WITH_UCX=OFF -DIMGCAST_WITH_VERBS=OFF > "$build.configure.log"
cmake --build "$build" --target "${targets[@]}" fuzz_make_seeds > "$build.build.log"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/fuzz/fuzz_make_seeds" "$work/seeds"
status=0
for target in "${targets[@]}"; do
  corpus=$work/corpus-$target
  mkdir -p "$corpus"
  cp -r "$here/fuzz/corpus/$target/." "$corpus/" 2>/dev/null || true
  cp -r "$work/seeds/$target/." "$corpus/"
  if "$build/fuzz/$target" -max_total_time="$seconds" -print_final_stats=1 \
       -artifact_prefix="$work/" "$corpus" > "$work/$target.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log")
    echo "fuzz $target: $runs runs in $seconds s, no crash"
  else
    echo "fuzz $target: CRASH, see below" >&2
    tail -40 "$work/$target.log" >&2
    cp "$work"/crash-* "$here/fuzz/" 2>/dev/null || true
    status=1
  fi
done
exit $status
