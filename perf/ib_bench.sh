#!/usr/bin/env bash
# InfiniBand mode: on real hosts, the link reference is perftest's ib_write_bw between the first
# two hosts; then imgcast replicates an image to every host with --transport verbs, ucx and tcp,
# and each is reported as imgcast's per-node rate (image bits / transfer seconds, as imgcast
# reports it) divided by ib_write_bw's. The goal (issue 8) is verbs >= 0.90 of ib_write_bw on one
# link. Hosts are reached with ssh (or RSH), imgcast must be at the same path on every host, and
# the image is read by the first host.
# Where no RDMA device exists it says so and exits 0 without measuring anything.
#
#   perf/ib_bench.sh HOSTFILE [SIZE_MIB (4096)]
#   perf/ib_bench.sh                       only checks this host for a device
#   RSH="ssh -o BatchMode=yes"  IMGCAST=/path/to/imgcast  IMAGE=/lustre/x.sif
#   DST=/tmp/imgcast-ib.img  TRANSPORTS="verbs ucx tcp"
#   IMGCAST_RDMA_DEVICE=mlx5_0:1   device and port for ib_write_bw and for imgcast. imgcast reads
#       it from the environment of every host: agents started over ssh see it only when the
#       hosts' environment sets it (or ssh forwards it: SendEnv/AcceptEnv IMGCAST_*).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

# The RDMA devices a host lists, one per line (none: empty). ibv_devices prints two header lines.
list_devices='ibv_devices 2>/dev/null | awk "NR > 2 {print \$1}"'

if (($# == 0)); then
  if [[ -z $(bash -c "$list_devices" || true) ]]; then
    echo "ib_bench: no RDMA device on this host (ibv_devices lists none): nothing to measure here"
    echo "ib_bench: run it on an InfiniBand/RoCE cluster: perf/ib_bench.sh HOSTFILE [SIZE_MIB]"
    exit 0
  fi
  echo "usage: perf/ib_bench.sh HOSTFILE [SIZE_MIB]  (HOSTFILE: 2 hosts or more, one a line)" >&2
  exit 2
fi

hostfile=$1
size_mib=${2:-4096}
rsh=${RSH:-ssh -o BatchMode=yes}
imgcast=${IMGCAST:-$here/build/cli/imgcast}
transports=${TRANSPORTS:-verbs ucx tcp}
dst=${DST:-/tmp/imgcast-ib.img}
mapfile -t hosts < <(grep -v '^\s*#' "$hostfile" | awk 'NF {print $1}')
(( ${#hosts[@]} >= 2 )) || { echo "ib_bench: $hostfile must list 2 hosts or more" >&2; exit 1; }
first=${hosts[0]}
second=${hosts[1]}
on() { local host=$1; shift; $rsh "$host" "$@"; }

for host in "$first" "$second"; do
  on "$host" true || { echo "ib_bench: cannot reach $host with '$rsh'" >&2; exit 1; }
done
# No RDMA device, no measurement: say so and stop (this is not a failure).
devices=$(on "$first" "$list_devices" || true)
if [[ -z $devices ]] || [[ -z $(on "$second" "$list_devices" || true) ]]; then
  echo "ib_bench: no RDMA device on $first or $second (ibv_devices lists none): nothing to measure"
  exit 0
fi
spec=${IMGCAST_RDMA_DEVICE:-$(head -1 <<<"$devices")}
device=${spec%%:*}
port=1
[[ $spec == *:* ]] && port=${spec##*:}

# The link reference: ib_write_bw, 1 MiB messages, RC, from the first host to the second.
reference=""
if on "$first" "command -v ib_write_bw" >/dev/null && on "$second" "command -v ib_write_bw" >/dev/null; then
  bw="ib_write_bw -d $device -i $port -s 1048576 -n 5000 -F --report_gbits"
  on "$second" "$bw" > /tmp/ib_write_bw.server 2>&1 &
  server=$!
  sleep 2
  reference=$(on "$first" "$bw $second" | awk '$1 == 1048576 {print $4}' | tail -1) || true
  wait "$server" || true
  [[ -n $reference ]] || { echo "ib_bench: ib_write_bw gave no result (see /tmp/ib_write_bw.server)" >&2; exit 1; }
  echo "ib_write_bw $first -> $second on $device port $port, 1 MiB messages: $reference Gbit/s (average)"
else
  echo "ib_bench: ib_write_bw (perftest) is missing on $first or $second: install it there" \
       "(apt-get install perftest); imgcast rates follow without the ratio" >&2
fi

image=${IMAGE:-}
if [[ -z $image ]]; then
  image=/tmp/imgcast-ib-source.img
  on "$first" "head -c $((size_mib << 20)) /dev/urandom > $image"
fi
host_list=$(IFS=,; echo "${hosts[*]}")
echo "| transport | hosts | MiB | transfer s | per-node Gbit/s | ÷ ib_write_bw | result |"
echo "|---|---|---|---|---|---|---|"
for transport in $transports; do
  report=$(on "$first" "IMGCAST_RDMA_DEVICE=$spec $imgcast -q replicate $image $dst \
    --hosts $host_list --rsh '$rsh' --transport $transport --force --json" 2>/tmp/ib_bench.err) || true
  if [[ -z $report ]]; then
    echo "| $transport | ${#hosts[@]} | $size_mib | - | - | - | $(head -1 /tmp/ib_bench.err) |"
    continue
  fi
  python3 - "$report" "${reference:-0}" "$transport" "${#hosts[@]}" <<'PY'
import json, sys
doc, reference, transport, hosts = json.loads(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
seconds = doc["transfer_seconds"]
gbits = doc["image_bytes"] * 8 / seconds / 1e9 if seconds > 0 else 0
ok = doc["totals"]["verified"] == doc["totals"]["nodes"]
ratio = f"{gbits / reference:.3f}" if reference > 0 else "n/a"
print(f"| {transport} | {hosts} | {doc['image_bytes'] >> 20} | {seconds:.3f} | {gbits:.2f} | "
      f"{ratio} | {'verified' if ok else 'NOT VERIFIED'} |")
PY
done
