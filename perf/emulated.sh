#!/usr/bin/env bash
# Every system on the same emulated cluster, in the same session: imgcast (with its default flags
# unless told otherwise), Slurm's sbcast (default and --fanout), an MPI_Bcast broadcaster
# (dbcast's method, as shipped and at Open MPI's best pipeline tuning), every host pulling from
# one storage host (the seed problem) and the plain netcat pipeline a job script would use. For
# each destination filesystem and N the cluster is built once (with Slurm when a system needs
# it), calibrated, and every system runs REPS times on it, interleaved (rep 1 of every system,
# then rep 2, ...). Every copy is compared with the source after every run; a run that did not
# verify is marked and not counted. Every line carries the machine's CPU % during the run.
#
# imgcast's `seconds` is the whole command: wall time from the start of `imgcast replicate` to
# its exit (agents' start, staging, transfer, final flush, goodbye). Its own setup and transfer
# seconds are recorded beside it (setup_seconds, transfer_seconds).
#
# Prints a Markdown row per run; appends JSON lines to OUT (default
# perf/results/emulated-<time>.jsonl), then writes the report (perf/report.py) beside it.
#
#   NODES="8 16" SIZES_MIB="256" RATE_MBIT=200 REPS=3 perf/emulated.sh
#   SYSTEMS="imgcast sbcast sbcast-fanout mpibcast mpibcast-pipeline allpull netcat"
#     also the calibration steps, to interleave them with the systems: link (iperf3 over one
#     link), ring (every link busy), ddfloor (parallel dd conv=fsync into every destination)
#   DEST_FS="tmpfs disk"   node-local destinations on tmpfs (/dev/shm, default) and/or on the
#                          disk (/var/tmp: ext4 on the reference machine) or "ext4" (an ext4 of
#                          its own with a journal, on a loop device: perf/cluster) or
#                          "hugetmpfs" (a tmpfs per host mounted huge=within_size); every row
#                          says which
#   IMGCAST_FLAGS=""       extra replicate flags (default none: the headline runs use defaults;
#                          e.g. IMGCAST_FLAGS="--link-mbit 200" for the old tuned runs)
#   IMGCAST_TOPOLOGIES="default chain binomial"   IMGCAST_CHUNKS="default 256K"
#   TRANSPORTS="default tcp ucx"  ("default": the flag is not passed)
#   SBCAST_FANOUT=2  MPI_CHUNK_MIB=1  MPI_PIPELINE_CHUNK_MIB=64  OUT=file.jsonl
#   CALIBRATE=all|ideal|none  (the calibration run before the reps; default all, with the
#                          ddfloor on disk destinations)
#   CASE=name              a "case" field in every row (perf/headline.sh)
#   NO_REPORT=1            no report at the end
#   PERF_CLUSTER=I         run on emulated cluster I (10.77.I.0/24; default 0)
set -euo pipefail
nodes_list=${NODES:-8 16}
sizes=${SIZES_MIB:-256}
rate=${RATE_MBIT:-200}
reps=${REPS:-1}
systems=${SYSTEMS:-imgcast sbcast sbcast-fanout mpibcast mpibcast-pipeline allpull netcat}
dest_fs_list=${DEST_FS:-${IMGCAST_CLUSTER_STORAGE:-tmpfs}}
imgcast_flags=${IMGCAST_FLAGS:-}
topologies=${IMGCAST_TOPOLOGIES:-default}
chunks=${IMGCAST_CHUNKS:-default}
transports=${TRANSPORTS:-default}
fanout=${SBCAST_FANOUT:-2}
mpi_chunk=${MPI_CHUNK_MIB:-1}
mpi_pipeline_chunk=${MPI_PIPELINE_CHUNK_MIB:-64}
calibrate=${CALIBRATE:-all}
here=$(cd "$(dirname "$0")/.." && pwd)
imgcast=${IMGCAST:-$here/build/cli/imgcast}
cluster=$here/perf/cluster
comparators=$here/perf/comparators
pfs=/dev/shm/imgcast-pfs${PERF_CLUSTER:+-$PERF_CLUSTER}
node_root=  # set once the cluster is up (perf/cluster node-root)
fs=
mkdir -p "$here/perf/results"
out=${OUT:-$here/perf/results/emulated-$(date +%Y%m%dT%H%M%S).jsonl}
[[ -x $imgcast ]] || { echo "emulated: build first ($imgcast missing)" >&2; exit 1; }
# Which emulated cluster (perf/cluster's IMGCAST_CLUSTER, 0..9): 0 unless PERF_CLUSTER says
# otherwise; pick another one while something else (the end-to-end cluster tests use 0) runs.
export IMGCAST_CLUSTER=${PERF_CLUSTER:-0}
net=10.77.$IMGCAST_CLUSTER
slurm=()
[[ " $systems " == *" sbcast"* || " $systems " == *" mpibcast"* ]] && slurm=(--slurm)

cleanup() { "$cluster" down; rm -rf "$pfs"; }
trap cleanup EXIT INT TERM

cpu_sample() { awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
clear_copies() { rm -f "$node_root"/h*/image.sif; }
verified_copies() {
  local n=$1 ok=0
  for ((h = 0; h < n; h++)); do cmp -s "$pfs/image.sif" "$node_root/h$h/image.sif" && ok=$((ok + 1)); done
  echo "$ok"
}

# Fields every row carries: the destination filesystem and the case (perf/headline.sh).
tags=()
set_tags() { tags=(dest_fs="$fs"); [[ -z ${CASE:-} ]] || tags+=(case="$CASE"); }
record() { python3 "$here/perf/record.py" "$out" "$@"; }
calibration() {  # calibration N SIZE REP WHAT: runs perf/calibrate.sh, records its lines
  local line
  while read -r line; do record --json "$line" "${tags[@]}" ${3:+rep="$3"}; done < <(
    "$here/perf/calibrate.sh" "$1" "$2" "$rate" "$4" "$pfs/image.sif")
}

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
    verified="$verified" copies="\"$ok/$n\"" "${tags[@]}" ${EXTRA_FIELDS:-}
}

# run_imgcast N TOPOLOGY CHUNK TRANSPORT: prints the whole command's wall seconds, from its
# start to its exit. "default" leaves that flag out.
run_imgcast() {
  local n=$1 topology=$2 chunk=$3 transport=$4
  local flags=() start end
  [[ $topology == default ]] || flags+=(--topology "$topology")
  [[ $chunk == default ]] || flags+=(--chunk-size "$chunk")
  [[ $transport == default ]] || flags+=(--transport "$transport")
  # shellcheck disable=SC2206
  flags+=($imgcast_flags)
  start=$(date +%s.%N)
  "$cluster" exec h0 /usr/bin/time -f "%U %S" -o "$pfs/time.txt" "$imgcast" replicate \
    "$pfs/image.sif" /mnt/imgcast-node/image.sif --hosts "$(seq -s, -f "$net.%g" 1 "$n")" \
    --rsh "$cluster rsh" "${flags[@]}" --json > "$pfs/imgcast.json"
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }'
}

imgcast_variant() {  # the settings in words: "defaults" or the flags given
  local words=()
  [[ $3 == default ]] || words+=("$3")
  [[ $1 == default ]] || words+=("$1")
  [[ $2 == default ]] || words+=("$2")
  [[ -z $imgcast_flags ]] || words+=("$imgcast_flags")
  ((${#words[@]})) && echo "${words[*]}" || echo defaults
}

echo "| nodes | MiB | system | variant | rep | seconds | ÷ ideal | machine CPU % |"
echo "|---|---|---|---|---|---|---|---|"
for fs in $dest_fs_list; do
  [[ $fs == tmpfs || $fs == hugetmpfs || $fs == disk || $fs == ext4 ]] || { echo "emulated: DEST_FS is tmpfs, hugetmpfs, disk or ext4, not '$fs'" >&2; exit 1; }
  set_tags
  for n in $nodes_list; do
    "$cluster" down
    IMGCAST_CLUSTER_STORAGE=$fs "$cluster" up "$n" "$rate" "${slurm[@]}" >/dev/null
    node_root=$("$cluster" node-root)
    mkdir -p "$pfs"
    for size in $sizes; do
      head -c $((size << 20)) /dev/urandom > "$pfs/image.sif"
      case $calibrate in
        all) calibration "$n" "$size" "" "ideal,link,ring$([[ $fs != *tmpfs ]] && echo ,ddfloor)" ;;
        ideal) calibration "$n" "$size" "" ideal ;;
        none) ;;
        *) echo "emulated: CALIBRATE is all, ideal or none" >&2; exit 1 ;;
      esac
      for ((rep = 1; rep <= reps; rep++)); do
        for system in $systems; do
          case $system in
            imgcast)
              for transport in $transports; do for topology in $topologies; do for chunk in $chunks; do
                measure "$n" "$size" "$rep" imgcast "$(imgcast_variant "$topology" "$chunk" "$transport")" \
                  run_imgcast "$n" "$topology" "$chunk" "$transport"
                if [[ -s $pfs/imgcast.json && -s $pfs/time.txt ]]; then
                  # imgcast's own view: setup and transfer seconds, plan, CPU s per GiB per node.
                  record --merge-imgcast "$pfs/imgcast.json" "$pfs/time.txt" "$size" "$n"
                fi
                rm -f "$pfs/imgcast.json" "$pfs/time.txt"
              done; done; done ;;
            sbcast) measure "$n" "$size" "$rep" sbcast "default" "$comparators/sbcast.sh" "$pfs/image.sif" "$n" ;;
            sbcast-fanout) measure "$n" "$size" "$rep" sbcast "--fanout=$fanout" "$comparators/sbcast.sh" "$pfs/image.sif" "$n" "$fanout" ;;
            mpibcast) measure "$n" "$size" "$rep" mpi-bcast "${mpi_chunk} MiB chunks, Open MPI's choice" "$comparators/mpi_bcast.sh" "$pfs/image.sif" "$n" "$mpi_chunk" ;;
            mpibcast-pipeline) measure "$n" "$size" "$rep" mpi-bcast "${mpi_pipeline_chunk} MiB chunks, pipeline ${MPI_BCAST_SEGMENT:-524288} B segments" "$comparators/mpi_bcast.sh" "$pfs/image.sif" "$n" "$mpi_pipeline_chunk" pipeline ;;
            allpull) measure "$n" "$size" "$rep" all-pull "nginx + curl" "$comparators/all_pull.sh" "$pfs/image.sif" "$n" ;;
            netcat) measure "$n" "$size" "$rep" netcat "tee + nc chain, sync + mv" "$comparators/netcat_pipe.sh" "$pfs/image.sif" "$n" ;;
            link|ring|ddfloor) calibration "$n" "$size" "$rep" "$system" ;;
            *) echo "emulated: unknown system '$system'" >&2; exit 1 ;;
          esac
        done
      done
    done
  done
done
echo
echo "results: $out"
[[ -n ${NO_REPORT:-} ]] || python3 "$here/perf/report.py" "$out"
