#!/usr/bin/env bash
# The shell script imgcast replaces, as a comparator: a plain pipeline. The root (h0) reads the
# image once, tees it into its own node-local copy and pipes it with netcat to the next host,
# which writes its copy (and, with more than 2 hosts, tees it on to the next: a chain of
# netcats). Every host then makes its copy durable and renames it into place: `sync FILE`
# (fsync of that file: on tmpfs nothing to do, on a disk the write-back) and `mv`. Prints the
# wall seconds from the first listener's start to the last rename; every copy is compared with
# cmp. The issue this answers says imgcast must never lose to it.
#
#   perf/comparators/netcat_pipe.sh IMAGE N [PORT (5301)]   (the cluster must be up with N hosts)
#
# Its best setting: netcat-openbsd's defaults (the kernel autotunes the socket buffers); fixed
# buffers made it slower: 2 hosts, 10 Gbit/s, 512 MiB, 3 interleaved runs each, 2026-12-03:
# defaults 1.64/1.83/2.17 s, -I/-O 4 MiB 1.80/2.18/2.36 s, -I/-O 1 MiB 1.74/2.07/2.79 s (NC_OPTS
# adds options on both ends to try others). `-N` closes the socket at end of input so the
# receiver sees EOF; `sync FILE` flushes only that file (not every dirty page of the machine as
# plain `sync` would, which on a shared test machine times other people's writes too).
set -euo pipefail
image=${1:?usage: netcat_pipe.sh IMAGE N [PORT]}
n=${2:?usage: netcat_pipe.sh IMAGE N [PORT]}
port=${3:-5301}
nc_opts=${NC_OPTS:-}  # extra nc options on both ends (e.g. "-I 4194304 -O 4194304"), for tuning
here=$(cd "$(dirname "$0")/../.." && pwd)
cluster=$here/perf/cluster
net=10.77.${IMGCAST_CLUSTER:-0}
command -v nc >/dev/null || { echo "netcat_pipe: nc missing: run scripts/setup.sh (netcat-openbsd)" >&2; exit 1; }
(( n >= 2 )) || { echo "netcat_pipe: needs 2 hosts or more" >&2; exit 1; }
name=$(basename "$image")
dst=/mnt/imgcast-node/$name
tmp=$dst.nc-tmp
node_root=$("$cluster" node-root)

listening() { "$cluster" exec "h$1" ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; }
start=$(date +%s.%N)
pids=()
# Receivers first, last host first, each listening before the one that sends to it starts.
for ((h = n - 1; h >= 1; h--)); do
  if ((h == n - 1)); then
    step="nc $nc_opts -l $net.$((h + 1)) $port > '$tmp'"
  else
    step="nc $nc_opts -l $net.$((h + 1)) $port | tee '$tmp' | nc $nc_opts -N $net.$((h + 2)) $port"
  fi
  "$cluster" exec "h$h" bash -c "set -o pipefail; $step && sync '$tmp' && mv '$tmp' '$dst'" < /dev/null &
  pids+=($!)
  for _ in $(seq 200); do listening "$h" && break; sleep 0.01; done
done
"$cluster" exec h0 bash -c "set -o pipefail; tee '$tmp' < '$image' | nc $nc_opts -N $net.2 $port && sync '$tmp' && mv '$tmp' '$dst'" &
pids+=($!)
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
end=$(date +%s.%N)
for ((h = 0; h < n; h++)); do
  cmp -s "$image" "$node_root/h$h/$name" || failed=$((failed + 1))
done
((failed == 0)) || { echo "netcat_pipe: $failed hosts did not get a verified copy" >&2; exit 2; }
awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }'
