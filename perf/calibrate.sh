#!/usr/bin/env bash
# Calibrates a running perf/cluster for SIZE MiB: the ideal time S*8/RATE, one measured copy over
# a single link (iperf3 h0 -> h1, SIZE bytes), and every link busy at once (a ring: hK -> hK+1,
# each SIZE bytes, all in parallel). If the ring's slowest link takes about as long as the single
# link, the cluster is link-bound; if it takes much longer, the machine's CPUs are the limit and
# N x RATE must come down. Prints one JSON object per line (ideal, single link, ring) with the
# machine's CPU % during each.
#
#   perf/calibrate.sh N SIZE_MIB RATE_MBIT
set -euo pipefail
n=${1:?usage: calibrate.sh N SIZE_MIB RATE_MBIT}
size_mib=${2:?usage: calibrate.sh N SIZE_MIB RATE_MBIT}
rate=${3:?usage: calibrate.sh N SIZE_MIB RATE_MBIT}
here=$(cd "$(dirname "$0")/.." && pwd)
cluster=$here/perf/cluster
net=10.77.${IMGCAST_CLUSTER:-0}
bytes=$((size_mib << 20))
command -v iperf3 >/dev/null || { echo "calibrate: iperf3 missing: run scripts/setup.sh" >&2; exit 1; }
(( n >= 2 )) || { echo "calibrate: needs 2 hosts or more" >&2; exit 1; }

cpu_sample() { awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
cpu_percent() { awk -v b0="$1" -v t0="$2" -v b1="$3" -v t1="$4" 'BEGIN { printf "%.1f", 100 * (b1 - b0) / ((t1 - t0) > 0 ? (t1 - t0) : 1) }'; }
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.3f", e - s }'; }

ideal=$(awk -v b="$bytes" -v r="$rate" 'BEGIN { printf "%.3f", b * 8 / (r * 1e6) }')
echo "{\"system\": \"calibration\", \"variant\": \"ideal S*8/RATE\", \"nodes\": $n, \"size_mib\": $size_mib, \"rate_mbit\": $rate, \"seconds\": $ideal, \"ideal_seconds\": $ideal}"

# One server per host, each answering one test, then gone.
servers() { for ((h = 0; h < n; h++)); do "$cluster" exec "h$h" iperf3 -s -1 -p 5201 >/dev/null 2>&1 & done; sleep 0.3; }

servers
read -r b0 t0 < <(cpu_sample); start=$(now)
"$cluster" exec h0 iperf3 -c "$net.2" -p 5201 -n "$bytes" >/dev/null
end=$(now); read -r b1 t1 < <(cpu_sample)
pkill -f "iperf3 -s -1 -p 5201" 2>/dev/null || true; wait 2>/dev/null || true
echo "{\"system\": \"calibration\", \"variant\": \"one link (iperf3 h0->h1)\", \"nodes\": $n, \"size_mib\": $size_mib, \"rate_mbit\": $rate, \"seconds\": $(elapsed "$start" "$end"), \"ideal_seconds\": $ideal, \"machine_cpu_percent\": $(cpu_percent "$b0" "$t0" "$b1" "$t1")}"

servers
read -r b0 t0 < <(cpu_sample); start=$(now)
pids=()
for ((h = 0; h < n; h++)); do
  "$cluster" exec "h$h" iperf3 -c "$net.$(( (h + 1) % n + 1 ))" -p 5201 -n "$bytes" >/dev/null &
  pids+=($!)
done
wait "${pids[@]}"
end=$(now); read -r b1 t1 < <(cpu_sample)
pkill -f "iperf3 -s -1 -p 5201" 2>/dev/null || true; wait 2>/dev/null || true
echo "{\"system\": \"calibration\", \"variant\": \"ring, all $n links busy\", \"nodes\": $n, \"size_mib\": $size_mib, \"rate_mbit\": $rate, \"seconds\": $(elapsed "$start" "$end"), \"ideal_seconds\": $ideal, \"machine_cpu_percent\": $(cpu_percent "$b0" "$t0" "$b1" "$t1")}"
