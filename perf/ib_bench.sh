#!/usr/bin/env bash
# InfiniBand mode: on real hosts, the link reference is perftest's ib_write_bw between the first
# two hosts; then imgcast replicates an image to every host with --transport verbs, ucx and tcp,
# and each is reported as imgcast's per-node rate (image bits / transfer seconds, as imgcast
# reports it) divided by ib_write_bw's. Hosts are reached with ssh (or RSH), imgcast must be at
# the same path on every host, and the image is read by the first host.
# Where no RDMA device exists it says so and exits 0 without measuring anything.
#
#   perf/ib_bench.sh HOSTFILE [SIZE_MIB (4096)]
#   RSH="ssh -o BatchMode=yes"  IMGCAST=/path/to/imgcast  DEVICE=mlx5_0  IMAGE=/lustre/x.sif
#   DST=/tmp/imgcast-ib.img  TRANSPORTS="verbs ucx tcp"
set -euo pipefail
hostfile=${1:?usage: ib_bench.sh HOSTFILE [SIZE_MIB]}
size_mib=${2:-4096}
rsh=${RSH:-ssh -o BatchMode=yes}
here=$(cd "$(dirname "$0")/.." && pwd)
imgcast=${IMGCAST:-$here/build/cli/imgcast}
transports=${TRANSPORTS:-verbs ucx tcp}
dst=${DST:-/tmp/imgcast-ib.img}
mapfile -t hosts < <(grep -v '^\s*#' "$hostfile" | awk 'NF {print $1}')
(( ${#hosts[@]} >= 2 )) || { echo "ib_bench: $hostfile must list 2 hosts or more" >&2; exit 1; }
first=${hosts[0]}
second=${hosts[1]}
on() { local host=$1; shift; $rsh "$host" "$@"; }

# No RDMA device, no measurement: say so and stop (this is not a failure).
devices=$(on "$first" "ibv_devices 2>/dev/null | awk 'NR > 2 {print \$1}'" || true)
if [[ -z $devices ]]; then
  echo "ib_bench: no RDMA device on $first (ibv_devices lists none): nothing to measure here"
  exit 0
fi
device=${DEVICE:-$(head -1 <<<"$devices")}
command -v ib_write_bw >/dev/null || echo "ib_bench: note: perftest is not installed here (apt-get install perftest on the hosts)" >&2

# The link reference: ib_write_bw, 1 MiB messages, RC, from the first host to the second.
on "$second" "ib_write_bw -d $device -s 1048576 -n 5000 -F --report_gbits" > /tmp/ib_write_bw.server 2>&1 &
server=$!
sleep 2
reference=$(on "$first" "ib_write_bw -d $device -s 1048576 -n 5000 -F --report_gbits $second" |
  awk '$1 == 1048576 {print $4}' | tail -1)
wait "$server" || true
[[ -n $reference ]] || { echo "ib_bench: ib_write_bw gave no result (see /tmp/ib_write_bw.server)" >&2; exit 1; }
echo "ib_write_bw $first -> $second, 1 MiB messages: $reference Gbit/s (average)"

image=${IMAGE:-}
if [[ -z $image ]]; then
  image=/tmp/imgcast-ib-source.img
  on "$first" "head -c $((size_mib << 20)) /dev/urandom > $image"
fi
host_list=$(IFS=,; echo "${hosts[*]}")
echo "| transport | hosts | MiB | transfer s | per-node Gbit/s | ÷ ib_write_bw | result |"
echo "|---|---|---|---|---|---|---|"
for transport in $transports; do
  report=$(on "$first" "$imgcast -q replicate $image $dst --hosts $host_list --rsh '$rsh' \
    --transport $transport --json ${RDMA_DEVICE:+--rdma-device $RDMA_DEVICE}" 2>/tmp/ib_bench.err) || true
  if [[ -z $report ]]; then
    echo "| $transport | ${#hosts[@]} | $size_mib | - | - | - | $(head -1 /tmp/ib_bench.err) |"
    continue
  fi
  python3 - "$report" "$reference" "$transport" "${#hosts[@]}" <<'PY'
import json, sys
doc, reference, transport, hosts = json.loads(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
seconds = doc["transfer_seconds"]
gbits = doc["image_bytes"] * 8 / seconds / 1e9 if seconds > 0 else 0
ok = doc["totals"]["verified"] == doc["totals"]["nodes"]
print(f"| {transport} | {hosts} | {doc['image_bytes'] >> 20} | {seconds:.3f} | {gbits:.2f} | "
      f"{gbits / reference:.3f} | {'verified' if ok else 'NOT VERIFIED'} |")
PY
done
