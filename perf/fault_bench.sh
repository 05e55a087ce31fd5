#!/usr/bin/env bash
# Fault tolerance on the emulated cluster: the same replication without faults and with one
# interior node SIGKILLed half-way through (at half the fault-free run's time), alternating,
# REPS times each. Every surviving copy is compared with the source; the faulty run must exit 3
# (partial) naming only the victim. Prints each run, then the medians and their ratio.
#
#   perf/fault_bench.sh [N=16] [SIZE_MIB=256] [RATE_MBIT=200] [REPS=3] [TOPOLOGY=auto]
#   VICTIM=K  the rank to kill (default N/2: an interior node of a chain or a tree)
set -euo pipefail
n=${1:-16}
size=${2:-256}
rate=${3:-200}
reps=${4:-3}
topology=${5:-auto}
victim=${VICTIM:-$((n / 2))}
here=$(cd "$(dirname "$0")/.." && pwd)
imgcast=${IMGCAST:-$here/build/cli/imgcast}
cluster=$here/perf/cluster
pfs=/dev/shm/imgcast-fault-pfs
[[ -x $imgcast ]] || { echo "fault_bench: build first ($imgcast missing)" >&2; exit 1; }
((victim >= 1 && victim < n)) || { echo "fault_bench: VICTIM must be 1..$((n - 1))" >&2; exit 1; }
export IMGCAST_CLUSTER=0
cleanup() { "$cluster" down; rm -rf "$pfs"; }
trap cleanup EXIT INT TERM

"$cluster" down
"$cluster" up "$n" "$rate" >/dev/null
node_root=$("$cluster" node-root)
mkdir -p "$pfs"
head -c $((size << 20)) /dev/urandom > "$pfs/image.sif"
hosts=$(seq -s, -f "10.77.0.%g" 1 "$n")

# run KILL_AFTER_SECONDS: one replication (0: no fault); prints "seconds exit verified/expected"
run() {
  local kill_after=$1
  rm -f "$node_root"/h*/image.sif
  local start end code=0
  start=$(date +%s.%N)
  "$cluster" exec h0 "$imgcast" -q replicate "$pfs/image.sif" /mnt/imgcast-node/image.sif \
    --hosts "$hosts" --rsh "$cluster rsh" --topology "$topology" \
    --stall-timeout 60 --json > "$pfs/report.json" 2> "$pfs/err.txt" &
  local pid=$!
  if [[ $kill_after != 0 ]]; then
    sleep "$kill_after"
    pkill -KILL -f -- "agent --control .* --rank $victim --host" || echo "fault_bench: victim not found" >&2
  fi
  wait "$pid" || code=$?
  end=$(date +%s.%N)
  local ok=0 expected=$n
  [[ $kill_after != 0 ]] && expected=$((n - 1))
  for ((h = 0; h < n; h++)); do cmp -s "$pfs/image.sif" "$node_root/h$h/image.sif" && ok=$((ok + 1)); done
  awk -v s="$start" -v e="$end" -v c="$code" -v o="$ok" -v x="$expected" \
    'BEGIN { printf "%.3f %d %d/%d\n", e - s, c, o, x }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

ideal=$(awk -v s="$size" -v r="$rate" 'BEGIN { printf "%.3f", s * 1048576 * 8 / (r * 1e6) }')
echo "N=$n, $size MiB, $rate Mbit/s links, topology $topology, victim rank $victim; ideal ${ideal}s"
: > "$pfs/clean.txt"; : > "$pfs/faulty.txt"
for ((rep = 1; rep <= reps; rep++)); do
  read -r clean code copies < <(run 0)
  echo "rep $rep  no fault:  ${clean}s  exit $code  copies $copies"
  [[ $code == 0 && ${copies%/*} == "${copies#*/}" ]] || { sed -n 1,5p "$pfs/err.txt" >&2; exit 1; }
  echo "$clean" >> "$pfs/clean.txt"
  kill_after=$(awk -v t="$clean" 'BEGIN { printf "%.2f", t / 2 }')
  read -r faulty code copies < <(run "$kill_after")
  echo "rep $rep  rank $victim killed at ${kill_after}s:  ${faulty}s  exit $code  copies $copies"
  [[ $code == 3 && ${copies%/*} == "${copies#*/}" ]] || { sed -n 1,5p "$pfs/err.txt" >&2; exit 1; }
  grep -o '"reparents": [1-9][0-9]*' "$pfs/report.json" | head -3 | sed 's/^/  /'
  echo "$faulty" >> "$pfs/faulty.txt"
done
clean_median=$(median < "$pfs/clean.txt")
faulty_median=$(median < "$pfs/faulty.txt")
awk -v c="$clean_median" -v f="$faulty_median" -v i="$ideal" 'BEGIN {
  printf "median no fault %.3fs (%.3f x ideal), with the kill %.3fs: ratio %.3f\n", c, c / i, f, f / c }'
