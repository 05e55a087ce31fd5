#!/usr/bin/env bash
# Calibrates a running perf/cluster for SIZE MiB: the ideal time S*8/RATE, one measured copy over
# a single link (iperf3 h0 -> h1, SIZE bytes, memory to memory), every link busy at once (a ring:
# hK -> hK+1, each SIZE bytes, all in parallel) and, given IMAGE, the destinations' own write
# floor (every host writes IMAGE into its node-local directory at once with `dd conv=fsync`). If
# the ring's slowest link takes about as long as the single link, the cluster is link-bound; if
# it takes much longer, the machine's CPUs are the limit and N x RATE must come down. Prints one
# JSON object per line with the machine's CPU % during each.
#
#   perf/calibrate.sh N SIZE_MIB RATE_MBIT [WHAT [IMAGE]]
#     WHAT: all (default: ideal, link, ring, and ddfloor when IMAGE is given) or a
#           comma-separated list of ideal, link, ring, ddfloor (perf/emulated.sh interleaves
#           link, ring and ddfloor with the systems it measures)
set -euo pipefail
usage="usage: calibrate.sh N SIZE_MIB RATE_MBIT [all|ideal,link,ring,ddfloor [IMAGE]]"
n=${1:?$usage}
size_mib=${2:?$usage}
rate=${3:?$usage}
what=${4:-all}
image=${5:-}
here=$(cd "$(dirname "$0")/.." && pwd)
cluster=$here/perf/cluster
net=10.77.${IMGCAST_CLUSTER:-0}
bytes=$((size_mib << 20))
command -v iperf3 >/dev/null || { echo "calibrate: iperf3 missing: run scripts/setup.sh" >&2; exit 1; }
(( n >= 2 )) || { echo "calibrate: needs 2 hosts or more" >&2; exit 1; }
[[ $what == all ]] && what=ideal,link,ring${image:+,ddfloor}
wants() { [[ ,$what, == *,$1,* ]]; }
if wants ddfloor && [[ ! -r $image ]]; then echo "calibrate: ddfloor needs IMAGE" >&2; exit 1; fi

cpu_sample() { awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
cpu_percent() { awk -v b0="$1" -v t0="$2" -v b1="$3" -v t1="$4" 'BEGIN { printf "%.1f", 100 * (b1 - b0) / ((t1 - t0) > 0 ? (t1 - t0) : 1) }'; }
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.3f", e - s }'; }

ideal=$(awk -v b="$bytes" -v r="$rate" 'BEGIN { printf "%.3f", b * 8 / (r * 1e6) }')
common="\"nodes\": $n, \"size_mib\": $size_mib, \"rate_mbit\": $rate, \"ideal_seconds\": $ideal"
wants ideal && echo "{\"system\": \"calibration\", \"variant\": \"ideal S*8/RATE\", $common, \"seconds\": $ideal}"

# The single link also gives the floor of CPU per GiB on this emulation: what iperf3's sender and
# receiver together spend (user + sys) to move the bytes once through the shaped links. A relay
# node of a chain both receives and sends every byte, so this is its floor too.
if wants link; then
  times=$(mktemp)
  "$cluster" exec h1 /usr/bin/time -f "%U %S" -o "$times.server" iperf3 -s -1 -p 5202 >/dev/null 2>&1 &
  server_pid=$!
  sleep 0.3
  read -r b0 t0 < <(cpu_sample); start=$(now)
  "$cluster" exec h0 /usr/bin/time -f "%U %S" -o "$times.client" iperf3 -c "$net.2" -p 5202 -n "$bytes" >/dev/null
  end=$(now); read -r b1 t1 < <(cpu_sample)
  wait "$server_pid" 2>/dev/null || true
  pair_cpu=$(cat "$times.client" "$times.server" | awk -v b="$bytes" '{ s += $1 + $2 } END { printf "%.4f", s / (b / 1073741824) }')
  rm -f "$times" "$times.client" "$times.server"
  echo "{\"system\": \"calibration\", \"variant\": \"one link (iperf3 h0->h1)\", $common, \"seconds\": $(elapsed "$start" "$end"), \"machine_cpu_percent\": $(cpu_percent "$b0" "$t0" "$b1" "$t1"), \"cpu_s_per_gib_send_and_receive\": $pair_cpu}"
fi

if wants ring; then
  # One server per host, each answering one test, then gone.
  servers=()
  for ((h = 0; h < n; h++)); do "$cluster" exec "h$h" iperf3 -s -1 -p 5201 >/dev/null 2>&1 & servers+=($!); done
  sleep 0.3
  read -r b0 t0 < <(cpu_sample); start=$(now)
  pids=()
  for ((h = 0; h < n; h++)); do
    "$cluster" exec "h$h" iperf3 -c "$net.$(( (h + 1) % n + 1 ))" -p 5201 -n "$bytes" >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
  end=$(now); read -r b1 t1 < <(cpu_sample)
  kill "${servers[@]}" 2>/dev/null || true; wait "${servers[@]}" 2>/dev/null || true
  echo "{\"system\": \"calibration\", \"variant\": \"ring, all $n links busy\", $common, \"seconds\": $(elapsed "$start" "$end"), \"machine_cpu_percent\": $(cpu_percent "$b0" "$t0" "$b1" "$t1")}"
fi

# The destinations' own write floor: every host writes the image into its node-local directory
# at once and fsyncs it (on a disk filesystem: what the disk sustains for N parallel writers; on
# tmpfs: the memory copy). imgcast on a disk cannot beat it.
if wants ddfloor; then
  read -r b0 t0 < <(cpu_sample); start=$(now)
  pids=()
  for ((h = 0; h < n; h++)); do
    "$cluster" exec "h$h" dd if="$image" of=/mnt/imgcast-node/dd-floor.tmp bs=4M conv=fsync status=none &
    pids+=($!)
  done
  wait "${pids[@]}"
  end=$(now); read -r b1 t1 < <(cpu_sample)
  rm -f "$("$cluster" node-root)"/h*/dd-floor.tmp
  echo "{\"system\": \"calibration\", \"variant\": \"write floor ($n parallel dd conv=fsync)\", $common, \"seconds\": $(elapsed "$start" "$end"), \"machine_cpu_percent\": $(cpu_percent "$b0" "$t0" "$b1" "$t1")}"
fi
