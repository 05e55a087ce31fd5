#!/usr/bin/env bash
# imgcast on the emulated cluster (perf/cluster): N hosts, links shaped to RATE Mbit/s, a
# SIZE MiB image read by h0 from a shared "PFS" directory, placed on every host's node-local
# directory. Every copy is compared with the source after every run; a run that did not verify
# does not count. Prints one Markdown row per run and appends JSON lines to perf/results/.
#
#   perf/emulated_bench.sh [N (16)] [SIZE_MIB (256)] [RATE_MBIT (200)] [REPS (1)]
#   TOPOLOGIES="binomial chain kary:2" CHUNKS="1M" TRANSPORTS="tcp ucx" SYSTEMS="imgcast allpull"
#   IMGCAST=build/cli/imgcast
set -euo pipefail
n=${1:-16}; size_mib=${2:-256}; rate=${3:-200}; reps=${4:-1}
topologies=${TOPOLOGIES:-binomial chain kary:2}
transports=${TRANSPORTS:-tcp}
systems=${SYSTEMS:-imgcast}  # imgcast and/or allpull (every host fetches from h0 over HTTP)
chunks=${CHUNKS:-1M}
here=$(cd "$(dirname "$0")/.." && pwd)
imgcast=${IMGCAST:-$here/build/cli/imgcast}
cluster=$here/perf/cluster
results=$here/perf/results
pfs=/dev/shm/imgcast-pfs
[[ -x $imgcast ]] || { echo "emulated_bench: build first ($imgcast missing)" >&2; exit 1; }

cleanup() { "$cluster" down; rm -rf "$pfs"; }
trap cleanup EXIT INT TERM
"$cluster" down
"$cluster" up "$n" "$rate" >/dev/null
mkdir -p "$pfs" "$results"
head -c $((size_mib << 20)) /dev/urandom > "$pfs/image.sif"
hosts=$(seq -s, -f "10.77.0.%g" 1 "$n")
ideal=$(python3 -c "print($size_mib * 1048576 * 8 / ($rate * 1e6))")
stamp=$(date +%Y%m%dT%H%M%S)
json=$results/emulated-$stamp.jsonl

cpu_busy() { awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }

echo "emulated cluster: $n hosts, ${rate} Mbit/s links, ${size_mib} MiB image, ideal S*8/RATE = ${ideal} s"
echo "| transport | topology | chunk | rep | time s | time/ideal | setup s | transfer s | machine CPU % | imgcast CPU s per GiB per node | plan |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
if [[ " $systems " == *" allpull "* ]]; then
  for ((rep = 1; rep <= reps; rep++)); do
    rm -f /dev/shm/imgcast-cluster/h*/image.sif
    read -r busy0 total0 < <(cpu_busy)
    seconds=$("$here/perf/comparators/all_pull.sh" "$pfs/image.sif" "$n")
    read -r busy1 total1 < <(cpu_busy)
    python3 - "$seconds" "$ideal" "$busy0" "$total0" "$busy1" "$total1" "$rep" "$n" \
      "$size_mib" "$rate" "$json" <<'PY'
import json, sys
seconds, ideal, b0, t0, b1, t1, rep, n, size, rate, path = sys.argv[1:]
cpu = 100 * (float(b1) - float(b0)) / max(1.0, float(t1) - float(t0))
print(f"| http | all-pull (nginx + curl) | - | {rep} | {float(seconds):.2f} | "
      f"{float(seconds) / float(ideal):.3f} | - | - | {cpu:.0f} | - | every host fetches from h0 |")
with open(path, "a") as out:
    out.write(json.dumps({"system": "all-pull", "rep": int(rep), "nodes": int(n),
                          "size_mib": int(size), "rate_mbit": int(rate),
                          "seconds": float(seconds), "ideal_seconds": float(ideal),
                          "machine_cpu_percent": round(cpu, 1)}) + "\n")
PY
  done
fi
[[ " $systems " == *" imgcast "* ]] || exit 0
for transport in $transports; do
for topology in $topologies; do
  for chunk in $chunks; do
    for ((rep = 1; rep <= reps; rep++)); do
      rm -f /dev/shm/imgcast-cluster/h*/image.sif
      read -r busy0 total0 < <(cpu_busy)
      start=$(date +%s.%N)
      # /usr/bin/time counts the root and every agent it reaped (the launcher waits for each).
      "$cluster" exec h0 /usr/bin/time -f "%U %S" -o /dev/shm/imgcast-cluster/h0.time \
        "$imgcast" --log-level warn replicate "$pfs/image.sif" /mnt/imgcast-node/image.sif \
        --hosts "$hosts" --rsh "$cluster rsh" --topology "$topology" --chunk-size "$chunk" \
        --link-mbit "$rate" --transport "$transport" --stall-timeout 120 \
        > /dev/shm/imgcast-cluster/out.txt
      end=$(date +%s.%N)
      read -r busy1 total1 < <(cpu_busy)
      verified=0
      for ((h = 0; h < n; h++)); do
        cmp -s "$pfs/image.sif" "/dev/shm/imgcast-cluster/h$h/image.sif" && verified=$((verified + 1))
      done
      if ((verified != n)); then
        echo "| $transport | $topology | $chunk | $rep | NOT VERIFIED ($verified/$n) | | | | | | |"
        continue
      fi
      read -r user sys < /dev/shm/imgcast-cluster/h0.time
      out=/dev/shm/imgcast-cluster/out.txt
      setup=$(sed -n 's/.*(setup \([0-9.]*\)s).*/\1/p' "$out")
      transfer=$(sed -n 's/.*transfer \([0-9.]*\)s.*/\1/p' "$out")
      plan=$(sed -n 's/^plan: \([^:]*\):.*/\1/p' "$out")
      python3 - "$transport" "$setup" "$transfer" "$plan" "$topology" "$chunk" "$rep" "$start" "$end" "$ideal" "$busy0" "$total0" "$busy1" \
        "$total1" "$user" "$sys" "$size_mib" "$n" "$rate" "$json" <<'PY'
import json, sys
(transport, setup, transfer, plan, topology, chunk, rep, start, end, ideal, b0, t0, b1, t1, user, sys_,
 size, n, rate, path) = sys.argv[1:]
elapsed = float(end) - float(start)
cpu = 100 * (float(b1) - float(b0)) / max(1.0, float(t1) - float(t0))
per_gib = (float(user) + float(sys_)) / (int(size) / 1024) / int(n)
print(f"| {transport} | {topology} | {chunk} | {rep} | {elapsed:.2f} | {elapsed / float(ideal):.3f} | {setup} | "
      f"{transfer} | {cpu:.0f} | {per_gib:.3f} | {plan} |")
with open(path, "a") as out:
    out.write(json.dumps({"system": "imgcast", "transport": transport, "topology": topology, "chunk": chunk, "rep": int(rep),
                          "nodes": int(n), "size_mib": int(size), "rate_mbit": int(rate),
                          "seconds": round(elapsed, 3), "ideal_seconds": float(ideal),
                          "setup_seconds": float(setup), "transfer_seconds": float(transfer),
                          "plan": plan,
                          "machine_cpu_percent": round(cpu, 1),
                          "imgcast_cpu_s_per_gib_per_node": round(per_gib, 4)}) + "\n")
PY
    done
  done
done
done
