#!/usr/bin/env bash
# Slurm's sbcast as a comparator: a batch job on all N hosts of a running `perf/cluster ...
# --slurm`; on h0 (the batch host) sbcast reads the image from the "PFS" directory and Slurm
# relays it through the slurmds to every host's node-local directory. Prints the seconds sbcast
# took, timed inside the job (queueing is not counted); every copy is compared with cmp.
#
#   perf/comparators/sbcast.sh IMAGE N [FANOUT]     (FANOUT: sbcast --fanout; default Slurm's)
set -euo pipefail
image=${1:?usage: sbcast.sh IMAGE N [FANOUT]}
n=${2:?usage: sbcast.sh IMAGE N [FANOUT]}
fanout=${3:-}
here=$(cd "$(dirname "$0")/../.." && pwd)
cluster=$here/perf/cluster
id=${IMGCAST_CLUSTER:-0}
node_root=$("$cluster" node-root)
name=$(basename "$image")
work=$(mktemp -d "$(dirname "$image")/sbcast.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

cat > "$work/job.sh" <<JOB
#!/bin/bash
start=\$(date +%s.%N)
sbcast ${fanout:+--fanout=$fanout} --force "$image" /mnt/imgcast-node/$name || exit 1
end=\$(date +%s.%N)
awk -v s="\$start" -v e="\$end" 'BEGIN { printf "seconds %.6f\\n", e - s }'
JOB
timeout 900 "$cluster" exec ctl sbatch --wait --quiet -N "$n" --exclusive -o "$work/job.out" \
  "$work/job.sh" || { echo "sbcast: the job failed:" >&2; cat "$work/job.out" >&2; exit 1; }
failed=0
for ((h = 0; h < n; h++)); do
  cmp -s "$image" "$node_root/h$h/$name" || failed=$((failed + 1))
done
((failed == 0)) || { echo "sbcast: $failed of $n copies differ from the source" >&2; exit 1; }
sed -n 's/^seconds //p' "$work/job.out"
