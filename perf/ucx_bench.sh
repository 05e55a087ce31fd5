#!/usr/bin/env bash
# UCX benchmark: imgcast --transport ucx against UCX's own put bandwidth (ucx_perftest
# ucp_put_bw), like with like: 2 hosts of an unshaped emulated cluster (UCX's TCP transport
# refuses bare loopback aliases, so the hosts are network namespaces, see perf/cluster), the
# same message size as imgcast's chunk, the same number of puts in flight as imgcast's window,
# the same number of bytes, alternating in every rep. Also runs imgcast --transport tcp beside
# them. Prints medians (min-max) and the per-rep ratio imgcast-ucx / ucx_perftest.
#
#   perf/ucx_bench.sh [SIZE_MIB (1024)] [REPS (5)] [extra imgcast replicate options...]
#   UCX_TLS (tcp)            both ucx_perftest and imgcast run with it
#   CHUNK (524288)           imgcast --chunk-size and ucx_perftest -s
#   OUTSTANDING (8)          ucx_perftest -O (imgcast's DataNode window is 8 writes per child)
#   UCX_TCP_TX_SEG_SIZE, UCX_TCP_RX_SEG_SIZE (1M): imgcast's own default when neither is set
#                            (transport/ucx/ucx_context.cc); set here for both programs, so
#                            ucx_perftest runs with the same segments. B_ENV="UCX_TCP_TX_SEG_SIZE=8K
#                            UCX_TCP_RX_SEG_SIZE=64K" compares with UCX's defaults.
#   IMGCAST=build/cli/imgcast
#   B_ENV="UCX_X=v ..."      A/B: every rep also runs ucx_perftest and imgcast with these extra
#                            variables (B), A and B alternating in order; each gets its ratio to
#                            its own ucx_perftest (like with like: same settings on both)
#   IMGCAST_B=other/imgcast  B runs this imgcast instead (B_ENV may be empty then)
#   IMGCAST_CLUSTER (5)      the emulated cluster instance this script brings up and down
#   UCX_BENCH_TCP=0          skip the imgcast --transport tcp runs
# Shared memory: UCX_TLS=sm,tcp perf/ucx_bench.sh 1024 5 (B_ENV=UCX_TLS=tcp for UCX's tcp beside
# it). The hosts share this machine's kernel, so UCX may pick posix/sysv/cma between them; the
# report prints the lanes each program's endpoints got (UCX's "ep_cfg" info lines), which is what
# decides the rate, and the whole command's wall time beside the transfer phase.
# Every other UCX_* variable in the environment reaches both ucx_perftest and imgcast.
set -euo pipefail
size_mib=${1:-1024}
reps=${2:-5}
shift $(($# > 2 ? 2 : $#))
here=$(cd "$(dirname "$0")/.." && pwd)
imgcast=${IMGCAST:-$here/build/cli/imgcast}
imgcast_b=${IMGCAST_B:-}
b_env=${B_ENV:-}
ab=$([[ -n $imgcast_b || -n $b_env ]] && echo 1 || echo 0)
chunk=${CHUNK:-524288}
outstanding=${OUTSTANDING:-8}
export UCX_TLS=${UCX_TLS:-tcp}
export UCX_TCP_TX_SEG_SIZE=${UCX_TCP_TX_SEG_SIZE:-1M} UCX_TCP_RX_SEG_SIZE=${UCX_TCP_RX_SEG_SIZE:-1M}
export IMGCAST_CLUSTER=${IMGCAST_CLUSTER:-5}
cluster=$here/perf/cluster
[[ -x $imgcast ]] || { echo "ucx_bench: build first ($imgcast missing)" >&2; exit 1; }
command -v ucx_perftest >/dev/null || { echo "ucx_bench: ucx_perftest missing (apt-get install ucx-utils)" >&2; exit 1; }
(((size_mib << 20) % chunk == 0)) || { echo "ucx_bench: SIZE_MIB must be a multiple of CHUNK" >&2; exit 1; }
iters=$(((size_mib << 20) / chunk))

"$cluster" up 2 0 > /dev/null
net=10.77.$IMGCAST_CLUSTER
dir=$(mktemp -d /dev/shm/imgcast-ucxbench-XXXXXX)
node_root=$("$cluster" node-root)
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null
  "$cluster" down > /dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
head -c $((size_mib << 20)) /dev/urandom > "$dir/source.img"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
range() { sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.0f-%.0f", lo, hi}'; }

# ucx_perftest: server on h1, client on h0; appends the overall bandwidth in MiB/s (its "MB/s")
# to $dir/TAG.mibs. ENV: extra VAR=value words for both ends.
run_perftest() {  # run_perftest TAG ENV
  local tag=$1 env=(env $2)
  local port=$((20000 + RANDOM % 20000))
  "${env[@]}" "$cluster" exec h1 ucx_perftest -p "$port" > "$dir/perftest-server.txt" 2>&1 &
  server=$!
  local out=
  for ((try = 0; try < 50; try++)); do
    sleep 0.1
    if out=$("${env[@]}" UCX_LOG_LEVEL=info "$cluster" exec h0 ucx_perftest "$net.2" -p "$port" -t ucp_put_bw -s "$chunk" \
      -n "$iters" -w 16 -O "$outstanding" 2>&1); then
      break
    fi
    out=
  done
  wait "$server" 2>/dev/null || true
  server=
  [[ -n $out ]] || { echo "ucx_bench: ucx_perftest did not run" >&2; exit 1; }
  awk '/^Final:/ {print $6}' <<< "$out" >> "$dir/$tag.mibs"
  lanes "$tag" <<< "$out"
}

# The first "ep_cfg[N]: ..." line UCX logged for TAG (what its endpoints' lanes are).
lanes() {  # lanes TAG < log
  [[ -s $dir/$1.lanes ]] || sed -n 's/.*ep_cfg\[[0-9]*\]: *//p' | tail -1 > "$dir/$1.lanes"
  cat > /dev/null
}

# imgcast: root on h0, agent on h1; appends the transfer phase's rate in MiB/s.
run_imgcast() {  # run_imgcast BINARY TRANSPORT TAG [ENV]
  local binary=$1 transport=$2 tag=$3 env=(env ${4:-}) transfer start end
  rm -f "$node_root"/h*/image
  start=$(date +%s.%N)
  "${env[@]}" UCX_LOG_LEVEL=info "$cluster" exec h0 "$binary" --log-level warn replicate "$dir/source.img" \
    /mnt/imgcast-node/image --hosts "$net.1,$net.2" --rsh "$cluster rsh" \
    --transport "$transport" --chunk-size "$chunk" --topology chain "${extra[@]}" \
    > "$dir/out.txt" 2> "$dir/err.txt"
  end=$(date +%s.%N)
  python3 -c "print($end - $start)" >> "$dir/$tag.wall"
  # UCX logs to the standard output unless UCX_LOG_FILE says otherwise.
  [[ $transport != ucx ]] || cat "$dir/out.txt" "$dir/err.txt" | lanes "$tag"
  transfer=$(sed -n 's/.*transfer \([0-9.]*\)s.*/\1/p' "$dir/out.txt")
  cmp -s "$dir/source.img" "$node_root/h1/image" || { echo "ucx_bench: copy differs!" >&2; exit 2; }
  python3 -c "print($size_mib/$transfer)" >> "$dir/$tag.mibs"
}

extra=("$@")
for f in perftest ucx perftestb ucxb tcp ratio ratiob idle; do : > "$dir/$f.mibs"; : > "$dir/$f.wall"; done
# The machine's idle % over half a second: how much others (builds, tests) are using it just
# before a rep. Printed per rep, as ucx_perftest (which busy-polls) suffers most from contention.
idle_now() {
  local a b
  read -r _ a < <(awk '/^cpu / {print "x", $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
  read -r a_idle a_total <<< "$a"
  sleep 0.5
  read -r _ b < <(awk '/^cpu / {print "x", $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
  read -r b_idle b_total <<< "$b"
  echo $((100 * (b_idle - a_idle) / (b_total - a_total)))
}

config_a() { run_perftest perftest ""; run_imgcast "$imgcast" ucx ucx; }
config_b() { run_perftest perftestb "$b_env"; run_imgcast "${imgcast_b:-$imgcast}" ucx ucxb "$b_env"; }
for ((i = 1; i <= reps; i++)); do
  idle_now >> "$dir/idle.mibs"
  if ((ab == 0)); then
    config_a
  elif ((i % 2)); then
    config_a; config_b
  else
    config_b; config_a
  fi
  [[ ${UCX_BENCH_TCP:-1} == 0 ]] || run_imgcast "$imgcast" tcp tcp
  python3 -c "print($(tail -1 "$dir/ucx.mibs")/$(tail -1 "$dir/perftest.mibs"))" >> "$dir/ratio.mibs"
  if ((ab)); then
    python3 -c "print($(tail -1 "$dir/ucxb.mibs")/$(tail -1 "$dir/perftestb.mibs"))" >> "$dir/ratiob.mibs"
  fi
done

span() { sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }
echo "UCX, 2 hosts (unshaped veth), ${size_mib} MiB, ${chunk}-byte puts, ${outstanding} in flight, UCX_TLS=$UCX_TLS, segments TX $UCX_TCP_TX_SEG_SIZE RX $UCX_TCP_RX_SEG_SIZE, median of $reps (min-max), MiB/s"
report() {  # report LABEL PERFTEST-TAG UCX-TAG RATIO-TAG
  printf '  %-3s ucx_perftest ucp_put_bw     %6.0f (%s)   lanes: %s\n' "$1" "$(median < "$dir/$2.mibs")" \
    "$(range < "$dir/$2.mibs")" "$(cat "$dir/$2.lanes" 2>/dev/null)"
  printf '  %-3s imgcast --transport ucx     %6.0f (%s)   ratio %.2f (per rep %s)\n' "$1" \
    "$(median < "$dir/$3.mibs")" "$(range < "$dir/$3.mibs")" "$(median < "$dir/$4.mibs")" "$(span < "$dir/$4.mibs")"
  printf '      whole command %.2f s (%s); lanes: %s\n' "$(median < "$dir/$3.wall")" \
    "$(span < "$dir/$3.wall")" "$(cat "$dir/$3.lanes" 2>/dev/null)"
}
report A perftest ucx ratio
((ab)) && report B perftestb ucxb ratiob
((ab)) && echo "  B: ${imgcast_b:-same imgcast}, extra env: ${b_env:-none}"
per_rep() { tr '\n' ' ' < "$dir/$1.mibs" | xargs printf '%.0f '; }
echo "  per rep: machine idle % before it: $(per_rep idle)"
echo "           A ucx_perftest: $(per_rep perftest)"
echo "           A imgcast ucx:  $(per_rep ucx)"
if ((ab)); then
  echo "           B ucx_perftest: $(per_rep perftestb)"
  echo "           B imgcast ucx:  $(per_rep ucxb)"
fi
if [[ ${UCX_BENCH_TCP:-1} != 0 ]]; then
  echo "           imgcast tcp:    $(per_rep tcp)"
  printf '      imgcast --transport tcp     %6.0f (%s)\n' "$(median < "$dir/tcp.mibs")" "$(range < "$dir/tcp.mibs")"
  printf '      whole command %.2f s (%s)\n' "$(median < "$dir/tcp.wall")" "$(span < "$dir/tcp.wall")"
fi
