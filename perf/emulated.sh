#!/usr/bin/env bash
# Every system on the same emulated cluster, in the same session: imgcast (each topology, chunk
# size and transport asked for), Slurm's sbcast (default and --fanout), an MPI_Bcast broadcaster
# (dbcast's method), and every host pulling from one storage host (the seed problem). For each N
# the cluster is built once (with Slurm), calibrated, and every system runs REPS times on it.
# Every copy is compared with the source after every run; a run that did not verify is marked
# and not counted. Every line carries the machine's CPU % during the run.
#
# Prints a Markdown row per run; appends JSON lines to OUT (default
# perf/results/emulated-<time>.jsonl), then writes the report (perf/report.py) beside it.
#
#   NODES="8 16" SIZES_MIB="256" RATE_MBIT=200 REPS=3 perf/emulated.sh
#   SYSTEMS="imgcast sbcast sbcast-fanout mpibcast mpibcast-pipeline allpull"
#   IMGCAST_TOPOLOGIES="auto chain binomial"
#   IMGCAST_CHUNKS="auto"  TRANSPORTS="tcp ucx"  SBCAST_FANOUT=2  MPI_CHUNK_MIB=1  OUT=file.jsonl
#   IMGCAST_CLUSTER_STORAGE=disk (node-local copies on the disk instead of tmpfs)
set -euo pipefail
nodes_list=${NODES:-8 16}
sizes=${SIZES_MIB:-256}
rate=${RATE_MBIT:-200}
reps=${REPS:-1}
systems=${SYSTEMS:-imgcast sbcast sbcast-fanout mpibcast mpibcast-pipeline allpull}
topologies=${IMGCAST_TOPOLOGIES:-auto}
chunks=${IMGCAST_CHUNKS:-auto}
transports=${TRANSPORTS:-tcp}
fanout=${SBCAST_FANOUT:-2}
mpi_chunk=${MPI_CHUNK_MIB:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
imgcast=${IMGCAST:-$here/build/cli/imgcast}
cluster=$here/perf/cluster
comparators=$here/perf/comparators
pfs=/dev/shm/imgcast-pfs
node_root=  # set once the cluster is up (perf/cluster node-root)
mkdir -p "$here/perf/results"
out=${OUT:-$here/perf/results/emulated-$(date +%Y%m%dT%H%M%S).jsonl}
[[ -x $imgcast ]] || { echo "emulated: build first ($imgcast missing)" >&2; exit 1; }
export IMGCAST_CLUSTER=0

cleanup() { "$cluster" down; rm -rf "$pfs"; }
trap cleanup EXIT INT TERM

cpu_sample() { awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
clear_copies() { rm -f "$node_root"/h*/image.sif; }
verified_copies() {
  local n=$1 ok=0
  for ((h = 0; h < n; h++)); do cmp -s "$pfs/image.sif" "$node_root/h$h/image.sif" && ok=$((ok + 1)); done
  echo "$ok"
}

record() { python3 "$here/perf/record.py" "$out" "$@"; }

# measure N SIZE REP SYSTEM VARIANT CMD...: runs CMD (which prints its own seconds, or nothing:
# then wall time counts), checks every copy, records the run.
measure() {
  local n=$1 size=$2 rep=$3 system=$4 variant=$5; shift 5
  clear_copies
  local b0 t0 b1 t1 start end printed
  read -r b0 t0 < <(cpu_sample); start=$(date +%s.%N)
  printed=$("$@" 2>"$pfs/err.txt" | tail -1) || printed=FAILED
  end=$(date +%s.%N); read -r b1 t1 < <(cpu_sample)
  local ok; ok=$(verified_copies "$n")
  local seconds=$printed
  [[ $seconds =~ ^[0-9.]+$ ]] || seconds=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')
  local cpu; cpu=$(awk -v b0="$b0" -v t0="$t0" -v b1="$b1" -v t1="$t1" 'BEGIN { printf "%.1f", 100 * (b1 - b0) / ((t1 - t0) > 0 ? (t1 - t0) : 1) }')
  local ideal; ideal=$(awk -v s="$size" -v r="$rate" 'BEGIN { printf "%.4f", s * 1048576 * 8 / (r * 1e6) }')
  local verified=true
  if [[ $printed == FAILED || $ok != "$n" ]]; then verified=false; sed -n 1,3p "$pfs/err.txt" >&2; fi
  record system="$system" variant="$variant" nodes="$n" size_mib="$size" rate_mbit="$rate" \
    rep="$rep" seconds="$seconds" ideal_seconds="$ideal" machine_cpu_percent="$cpu" \
    verified="$verified" copies="\"$ok/$n\"" ${EXTRA_FIELDS:-}
}

run_imgcast() {  # run_imgcast N TOPOLOGY CHUNK TRANSPORT: prints the transfer's wall seconds
  local n=$1 topology=$2 chunk=$3 transport=$4
  local start end
  start=$(date +%s.%N)
  "$cluster" exec h0 /usr/bin/time -f "%U %S" -o "$pfs/time.txt" "$imgcast" -q replicate \
    "$pfs/image.sif" /mnt/imgcast-node/image.sif --hosts "$(seq -s, -f "10.77.0.%g" 1 "$n")" \
    --rsh "$cluster rsh" --topology "$topology" --chunk-size "$chunk" --link-mbit "$rate" \
    --transport "$transport" --stall-timeout 120 --json > "$pfs/imgcast.json"
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }'
}

echo "| nodes | MiB | system | variant | rep | seconds | ÷ ideal | machine CPU % |"
echo "|---|---|---|---|---|---|---|---|"
for n in $nodes_list; do
  "$cluster" down
  "$cluster" up "$n" "$rate" --slurm >/dev/null
  node_root=$("$cluster" node-root)
  mkdir -p "$pfs"
  for size in $sizes; do
    head -c $((size << 20)) /dev/urandom > "$pfs/image.sif"
    while read -r line; do record --json "$line"; done < <("$here/perf/calibrate.sh" "$n" "$size" "$rate")
    for ((rep = 1; rep <= reps; rep++)); do
      for system in $systems; do
        case $system in
          imgcast)
            for transport in $transports; do for topology in $topologies; do for chunk in $chunks; do
              measure "$n" "$size" "$rep" imgcast "$transport $topology $chunk" \
                run_imgcast "$n" "$topology" "$chunk" "$transport"
              if [[ -s $pfs/imgcast.json && -s $pfs/time.txt ]]; then
                # imgcast's own view: setup and transfer seconds, plan, CPU s per GiB per node.
                record --merge-imgcast "$pfs/imgcast.json" "$pfs/time.txt" "$size" "$n"
              fi
            done; done; done ;;
          sbcast) measure "$n" "$size" "$rep" sbcast "default" "$comparators/sbcast.sh" "$pfs/image.sif" "$n" ;;
          sbcast-fanout) measure "$n" "$size" "$rep" sbcast "--fanout=$fanout" "$comparators/sbcast.sh" "$pfs/image.sif" "$n" "$fanout" ;;
          mpibcast) measure "$n" "$size" "$rep" mpi-bcast "${mpi_chunk} MiB chunks" "$comparators/mpi_bcast.sh" "$pfs/image.sif" "$n" "$mpi_chunk" ;;
          mpibcast-pipeline) measure "$n" "$size" "$rep" mpi-bcast "${mpi_chunk} MiB chunks, pipeline 128 KiB" "$comparators/mpi_bcast.sh" "$pfs/image.sif" "$n" "$mpi_chunk" pipeline ;;
          allpull) measure "$n" "$size" "$rep" all-pull "nginx + curl" "$comparators/all_pull.sh" "$pfs/image.sif" "$n" ;;
          *) echo "emulated: unknown system '$system'" >&2; exit 1 ;;
        esac
      done
    done
  done
done
echo
echo "results: $out"
python3 "$here/perf/report.py" "$out"
