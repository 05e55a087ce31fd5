#!/usr/bin/env bash
# Loopback benchmark: imgcast with 2 processes (root + 1 agent) moving SIZE MiB from tmpfs to
# tmpfs, against one iperf3 TCP stream over 127.0.0.1 measured in the same run. Prints both and
# the ratio; then replicates a RSS_MIB (4096) image and reports the agent's peak anonymous RSS.
#
#   perf/loopback_bench.sh [SIZE_MIB (1024)] [REPS (3)] [extra imgcast replicate options...]
#   IMGCAST=build/cli/imgcast (default)
#   IMGCAST_B=other/imgcast: A/B mode. Every rep runs iperf3, then A, then B (the order of A and
#     B alternates between reps), so both builds see the same machine; prints both, their ratios
#     to iperf3 and B/A, with min-max. The RSS run is skipped in this mode.
#   TMPFS=huge: the images live on a private huge-page tmpfs (huge=always), not /dev/shm.
#   CPU=1: where the CPU goes instead (needs perf): every rep, iperf3's CPU seconds (client +
#     server, whole run) and imgcast's (root + agent) over its data phase only: the 50 ms
#     intervals in which the root reads the source or the agent receives (perf stat -I with the
#     pread64/recvmsg tracepoints), per GiB, medians. On one shared machine both ends share the
#     CPUs, so the throughput ratio follows the ratio of CPU seconds per byte.
set -euo pipefail
size_mib=${1:-1024}
reps=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
here=$(cd "$(dirname "$0")/.." && pwd)
imgcast=${IMGCAST:-$here/build/cli/imgcast}
[[ -x $imgcast ]] || { echo "loopback_bench: build first ($imgcast missing)" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "loopback_bench: iperf3 missing: run scripts/setup.sh" >&2; exit 1; }

dir=$(mktemp -d /dev/shm/imgcast-bench-XXXXXX)
iperf_pid=
huge_mount=
cleanup() {
  [[ -n $iperf_pid ]] && kill "$iperf_pid" 2>/dev/null
  [[ -n $huge_mount ]] && umount "$dir"
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
if [[ ${TMPFS:-} == huge ]]; then
  # A private tmpfs with transparent huge pages (huge=always) instead of /dev/shm, which is
  # mounted without (huge=never): in a VM each 4 KiB page costs page-cache and TLB work that
  # iperf3's small cache-hot buffers never pay. Needs root.
  room=$(( (size_mib > ${RSS_MIB:-4096} ? size_mib : ${RSS_MIB:-4096}) * 3 + 1024 ))
  mount -t tmpfs -o "size=${room}m,huge=always" imgcast-bench "$dir"
  huge_mount=1
fi
mkdir -p "$dir/node0" "$dir/node1"
head -c $((size_mib << 20)) /dev/urandom > "$dir/source.img"

port=$((20000 + RANDOM % 20000))
iperf3 -s -p "$port" >/dev/null 2>&1 &
iperf_pid=$!
sleep 0.5

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
range() { sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }

# One imgcast run with binary $1; appends its transfer-phase and whole-command rates to
# $dir/$2.gbps and $dir/$2.wall, and checks the copy.
run_imgcast() {
  local binary=$1 tag=$2 start end transfer
  shift 2
  rm -f "$dir"/node*/image
  start=$(date +%s.%N)
  "$binary" --log-level warn replicate "$dir/source.img" "$dir/node%r/image" \
    --hosts 127.0.0.1,127.0.0.2 --rsh local "$@" > "$dir/out.txt"
  end=$(date +%s.%N)
  transfer=$(sed -n 's/.*transfer \([0-9.]*\)s.*/\1/p' "$dir/out.txt")
  python3 -c "print($size_mib*1048576*8/$transfer/1e9)" >> "$dir/$tag.gbps"
  python3 -c "print($size_mib*1048576*8/($end-$start)/1e9)" >> "$dir/$tag.wall"
  cmp -s "$dir/source.img" "$dir/node1/image" || { echo "loopback_bench: copy differs!" >&2; exit 2; }
}

if [[ ${CPU:-0} == 1 ]]; then
  command -v perf >/dev/null || { echo "loopback_bench: CPU=1 needs perf (apt-get install linux-perf)" >&2; exit 1; }
  : > "$dir/cpu.iperf"; : > "$dir/cpu.imgcast"; : > "$dir/cpu.transfer"
  gib=$(python3 -c "print($size_mib/1024)")
  for ((i = 1; i <= reps; i++)); do
    perf stat -x, -e task-clock -o "$dir/srv.txt" iperf3 -s -1 -p $((port + i)) > /dev/null 2>&1 &
    sleep 0.3
    perf stat -x, -e task-clock -o "$dir/cli.txt" iperf3 -c 127.0.0.1 -p $((port + i)) -n "${size_mib}M" > /dev/null
    wait $!
    cat "$dir/srv.txt" "$dir/cli.txt" | awk -F, -v g="$gib" '/task-clock/ {s += $1} END {print s / 1000 / g}' >> "$dir/cpu.iperf"
    rm -f "$dir"/node*/image
    perf stat -x, -I 50 -e task-clock,syscalls:sys_enter_pread64,syscalls:sys_enter_recvmsg \
      -o "$dir/intervals.txt" -- "$imgcast" --log-level warn replicate "$dir/source.img" \
      "$dir/node%r/image" --hosts 127.0.0.1,127.0.0.2 --rsh local "$@" > "$dir/out.txt"
    cmp -s "$dir/source.img" "$dir/node1/image" || { echo "loopback_bench: copy differs!" >&2; exit 2; }
    sed -n 's/.*transfer \([0-9.]*\)s.*/\1/p' "$dir/out.txt" >> "$dir/cpu.transfer"
    # An interval belongs to the data phase when the source was read or chunks were received.
    awk -F, -v g="$gib" '!/^#/ && NF > 3 {
        v[$1, $4] = $2; t[$1] = 1 }
      END { for (ts in t) if (v[ts, "syscalls:sys_enter_pread64"] > 0 || v[ts, "syscalls:sys_enter_recvmsg"] > 10) s += v[ts, "task-clock"]
            print s / 1000 / g }' "$dir/intervals.txt" >> "$dir/cpu.imgcast"
  done
  echo "CPU seconds per GiB, loopback, ${size_mib} MiB tmpfs -> tmpfs, median of $reps (min-max)"
  printf '  iperf3, client + server, whole run       %.3f (%s)\n' "$(median < "$dir/cpu.iperf")" "$(range < "$dir/cpu.iperf")"
  printf '  imgcast, root + agent, data phase        %.3f (%s)   transfer %.3f s (%s)\n' \
    "$(median < "$dir/cpu.imgcast")" "$(range < "$dir/cpu.imgcast")" "$(median < "$dir/cpu.transfer")" "$(range < "$dir/cpu.transfer")"
  printf '  imgcast / iperf3                         %.2f\n' "$(python3 -c "print($(median < "$dir/cpu.imgcast")/$(median < "$dir/cpu.iperf"))")"
  exit 0
fi

if [[ -n ${IMGCAST_B:-} ]]; then
  [[ -x $IMGCAST_B ]] || { echo "loopback_bench: $IMGCAST_B missing" >&2; exit 1; }
  : > "$dir/iperf.gbps"; : > "$dir/a.gbps"; : > "$dir/b.gbps"; : > "$dir/a.wall"; : > "$dir/b.wall"
  : > "$dir/ba.ratio"
  for ((i = 1; i <= reps; i++)); do
    iperf3 -c 127.0.0.1 -p "$port" -n "${size_mib}M" -J > "$dir/iperf.json"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["end"]["sum_received"]["bits_per_second"]/1e9)' \
      "$dir/iperf.json" >> "$dir/iperf.gbps"
    if ((i % 2)); then
      run_imgcast "$imgcast" a "$@"; run_imgcast "$IMGCAST_B" b "$@"
    else
      run_imgcast "$IMGCAST_B" b "$@"; run_imgcast "$imgcast" a "$@"
    fi
    python3 -c "print($(tail -1 "$dir/b.gbps")/$(tail -1 "$dir/a.gbps"))" >> "$dir/ba.ratio"
  done
  iperf=$(median < "$dir/iperf.gbps")
  echo "loopback A/B, 2 processes, ${size_mib} MiB tmpfs -> tmpfs, median of $reps (min-max)"
  echo "  A = $imgcast"
  echo "  B = $IMGCAST_B"
  printf '  iperf3 one stream          %7.2f Gbit/s (%s)\n' "$iperf" "$(range < "$dir/iperf.gbps")"
  for tag in a b; do
    ours=$(median < "$dir/$tag.gbps")
    printf '  %s transfer phase           %7.2f Gbit/s (%s)  ratio %.2f   whole command %.2f Gbit/s\n' \
      "${tag^^}" "$ours" "$(range < "$dir/$tag.gbps")" "$(python3 -c "print($ours/$iperf)")" \
      "$(median < "$dir/$tag.wall")"
  done
  printf '  B/A per rep, transfer      %7.3f (%s)\n' "$(median < "$dir/ba.ratio")" "$(range < "$dir/ba.ratio")"
  exit 0
fi

rss_file=$dir/rss
: > "$dir/imgcast.gbps"; : > "$dir/imgcast.wall"; : > "$dir/iperf.gbps"; : > "$rss_file"; : > "$dir/ratio"
for ((i = 1; i <= reps; i++)); do
  # iperf3: one stream, as many bytes as the image, received rate.
  iperf3 -c 127.0.0.1 -p "$port" -n "${size_mib}M" -J > "$dir/iperf.json"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["end"]["sum_received"]["bits_per_second"]/1e9)' \
    "$dir/iperf.json" >> "$dir/iperf.gbps"

  run_imgcast "$imgcast" imgcast "$@"
  python3 -c "print($(tail -1 "$dir/imgcast.gbps")/$(tail -1 "$dir/iperf.gbps"))" >> "$dir/ratio"
done

# Memory: one run with a RSS_MIB image (4 GiB by default), sampling the agent's anonymous RSS
# (its staged copy is a shared file mapping, so only buffers the agent allocates count).
rss_mib=${RSS_MIB:-4096}
rm -f "$dir"/node*/image "$dir/source.img"
head -c $((rss_mib << 20)) /dev/zero | tr '\0' '\1' > "$dir/source.img"
"$imgcast" --log-level warn replicate "$dir/source.img" "$dir/node%r/image" \
  --hosts 127.0.0.1,127.0.0.2 --rsh local "$@" > "$dir/out.txt" &
root=$!
peak=0
while kill -0 "$root" 2>/dev/null; do
  for pid in $(pgrep -f "imgcast .*agent .*--rank 1" || true); do
    kb=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    (( kb > peak )) && peak=$kb
  done
  sleep 0.05
done
wait "$root"
echo "$peak" > "$rss_file"

iperf=$(median < "$dir/iperf.gbps")
ours=$(median < "$dir/imgcast.gbps")
wall=$(median < "$dir/imgcast.wall")
rss=$(sort -n "$rss_file" | tail -1)
echo "loopback, 2 processes, ${size_mib} MiB tmpfs -> tmpfs, median of $reps (min-max)"
printf '  iperf3 one stream          %7.2f Gbit/s (%s)\n' "$iperf" "$(range < "$dir/iperf.gbps")"
printf '  imgcast transfer phase     %7.2f Gbit/s (%s)   ratio %.2f   per-rep ratio %.2f (%s)\n' \
  "$ours" "$(range < "$dir/imgcast.gbps")" "$(python3 -c "print($ours/$iperf)")" \
  "$(median < "$dir/ratio")" "$(range < "$dir/ratio")"
printf '  imgcast whole command      %7.2f Gbit/s   ratio %.2f\n' "$wall" "$(python3 -c "print($wall/$iperf)")"
printf '  agent peak anonymous RSS   %7.1f MiB  (replicating %d MiB)\n' "$(python3 -c "print($rss/1024)")" "$rss_mib"
