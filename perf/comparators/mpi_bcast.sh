#!/usr/bin/env bash
# An MPI_Bcast broadcaster as a comparator (what mpiFileUtils' dbcast does: rank 0 reads chunks,
# MPI_Bcast()s them, every rank writes its node-local copy), one rank per host of a running
# perf/cluster, launched by Open MPI's mpirun from the control host with perf/cluster rsh as
# its rsh agent. Prints the seconds rank 0 measured; every copy is compared with cmp.
#
# Fairness on 2 cores: Open MPI's ranks spin while they wait, and 16 spinning ranks on 2 cores
# starve the ones with work. mpi_yield_when_idle=1 makes a waiting rank sched_yield() between
# polls, which lets the busy ones run; the machine's CPU % (reported by the caller) shows the
# remaining cost of the spinning.
#
#   perf/comparators/mpi_bcast.sh IMAGE N [CHUNK_MIB (1)]    (the cluster must be up, --slurm or not)
set -euo pipefail
image=${1:?usage: mpi_bcast.sh IMAGE N [CHUNK_MIB]}
n=${2:?usage: mpi_bcast.sh IMAGE N [CHUNK_MIB]}
chunk=${3:-1}
here=$(cd "$(dirname "$0")/../.." && pwd)
cluster=$here/perf/cluster
program=${MPI_BCAST_FILE:-$here/build/perf/mpi_bcast_file}
id=${IMGCAST_CLUSTER:-0}
node_root=/dev/shm/imgcast-cluster$([[ $id == 0 ]] || echo "-$id")
name=$(basename "$image")
[[ -x $program ]] || { echo "mpi_bcast: $program missing (build with libopenmpi-dev installed)" >&2; exit 1; }
[[ -e /run/netns/imgc$id-ctl ]] || { echo "mpi_bcast: needs the control host: perf/cluster up N RATE --slurm" >&2; exit 1; }

out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 900 \
  "$cluster" exec ctl mpirun --mca plm_rsh_agent "$cluster rsh" \
  --mca oob_tcp_if_include "10.77.$id.0/24" --mca btl self,tcp --mca btl_tcp_if_include "10.77.$id.0/24" \
  --mca mpi_yield_when_idle 1 \
  --host "$(seq -s, -f 'h%g' 0 $((n - 1)))" --map-by ppr:1:node -np "$n" \
  "$program" "$image" "/mnt/imgcast-node/$name" "$chunk")
failed=0
for ((h = 0; h < n; h++)); do
  cmp -s "$image" "$node_root/h$h/$name" || failed=$((failed + 1))
done
((failed == 0)) || { echo "mpi_bcast: $failed of $n copies differ from the source" >&2; exit 1; }
sed -n 's/^seconds //p' <<<"$out"
