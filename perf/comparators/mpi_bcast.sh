#!/usr/bin/env bash
# An MPI_Bcast broadcaster as a comparator (what mpiFileUtils' dbcast does: rank 0 reads chunks,
# MPI_Bcast()s them, every rank writes its node-local copy), one rank per host of a running
# perf/cluster, launched by Open MPI's mpirun from the control host with perf/cluster rsh as
# its rsh agent. Prints the seconds rank 0 measured; every copy is compared with cmp.
#
# Fairness on 2 cores: Open MPI's ranks spin while they wait, and 16 spinning ranks on 2 cores
# starve the ones with work (measured: 99 % CPU, 7.3 x ideal at 8 hosts). With
# mpi_yield_when_idle=1 a waiting rank calls sched_yield() between polls, and the LD_PRELOAD
# yield_sleep.so turns that into a 50 us sleep, so idle ranks cost almost nothing. The caller
# reports the machine's CPU % beside the time.
#
# ALGORITHM: Open MPI's MPI_Bcast algorithm: "default" (its own decision rules; what dbcast gets
# out of the box) or "pipeline", its best setting for large broadcasts on a cluster like ours:
# coll_tuned_use_dynamic_rules 1, coll_tuned_bcast_algorithm 3 (3 is "pipeline" in Open MPI 4.1:
# `ompi_info --param coll tuned --level 9` lists 0 ignore, 1 basic_linear, 2 chain, 3 pipeline,
# 4 split_binary_tree, 5 binary_tree, 6 binomial, ...), 512 KiB segments
# (coll_tuned_bcast_algorithm_segmentsize 524288), used with 64 MiB chunks (CHUNK_MIB 64): every
# link busy at once, a chain like imgcast's, few per-chunk barriers. Measured for issue 20 at 16
# hosts, 200 Mbit/s: 1.24-1.36 x ideal, against 3.2 x with 1 MiB chunks and 128 KiB segments.
# MPI_BCAST_SEGMENT overrides the segment size (bytes).
#
#   perf/comparators/mpi_bcast.sh IMAGE N [CHUNK_MIB (1)] [ALGORITHM (default)]
set -euo pipefail
image=${1:?usage: mpi_bcast.sh IMAGE N [CHUNK_MIB]}
n=${2:?usage: mpi_bcast.sh IMAGE N [CHUNK_MIB]}
chunk=${3:-1}
algorithm=${4:-default}
here=$(cd "$(dirname "$0")/../.." && pwd)
cluster=$here/perf/cluster
program=${MPI_BCAST_FILE:-$here/build/perf/mpi_bcast_file}
preload=${YIELD_SLEEP:-$(dirname "$program")/imgcast_yield_sleep.so}
tuning=()
case $algorithm in
  default) ;;
  pipeline) tuning=(--mca coll_tuned_use_dynamic_rules 1 --mca coll_tuned_bcast_algorithm 3
                    --mca coll_tuned_bcast_algorithm_segmentsize "${MPI_BCAST_SEGMENT:-524288}") ;;
  *) echo "mpi_bcast: ALGORITHM is default or pipeline" >&2; exit 1 ;;
esac
[[ -e $preload ]] || { echo "mpi_bcast: $preload missing (build the project)" >&2; exit 1; }
id=${IMGCAST_CLUSTER:-0}
node_root=$("$cluster" node-root)
name=$(basename "$image")
[[ -x $program ]] || { echo "mpi_bcast: $program missing (build with libopenmpi-dev installed)" >&2; exit 1; }
[[ -e /run/netns/imgc$id-ctl ]] || { echo "mpi_bcast: needs the control host: perf/cluster up N RATE --slurm" >&2; exit 1; }

out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 900 \
  "$cluster" exec ctl mpirun --mca plm_rsh_agent "$cluster rsh" \
  --mca oob_tcp_if_include "10.77.$id.0/24" --mca btl self,tcp --mca btl_tcp_if_include "10.77.$id.0/24" \
  --mca mpi_yield_when_idle 1 -x LD_PRELOAD="$preload" "${tuning[@]}" \
  --host "$(seq -s, -f 'h%g' 0 $((n - 1)))" --map-by ppr:1:node -np "$n" \
  "$program" "$image" "/mnt/imgcast-node/$name" "$chunk")
failed=0
for ((h = 0; h < n; h++)); do
  cmp -s "$image" "$node_root/h$h/$name" || failed=$((failed + 1))
done
((failed == 0)) || { echo "mpi_bcast: $failed of $n copies differ from the source" >&2; exit 1; }
sed -n 's/^seconds //p' <<<"$out"
