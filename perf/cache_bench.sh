#!/usr/bin/env bash
# The node cache across jobs (`imgcast replicate --cache`): a replay of a job sequence on an
# emulated cluster, every job staging one of IMAGES images of SIZE_MIB to every host, against the
# same sequence without the cache in the same run.
#
#   cache     imgcast replicate --cache SRC DST --cache-dir /mnt/imgcast-node/cache
#             --cache-max BUDGET   (default flags otherwise; the cache on node-local storage)
#   nocache   imgcast replicate SRC DST   (every job stages)
#
# The two are interleaved job by job (job 1 cache then nocache, job 2 nocache then cache, ...).
# The sequence is deterministic from SEED and printed first: a Zipf-like popularity over the
# images (weight 1/rank^ZIPF_S, which image has which rank is seeded too) with bursts (with
# probability BURST a job reruns the previous job's image, as a resubmission or a job array does).
#
# What is measured, per job:
#   seconds            the whole `imgcast replicate` command on h0, from outside (date +%s.%N
#                      around `perf/cluster exec h0 imgcast ...`, so entering h0's namespaces is
#                      in it; that cost alone is measured once and printed)
#   setup/transfer     imgcast's own --json report; `cached` = how many hosts answered from their
#                      cache entry. A job is a hit when every host did, a miss when none did.
#   source_bytes_read  bytes read from the source's block device: the images live on an ext4 file
#                      system of their own on a loop device (backing file under /var/tmp), mounted
#                      where h0 and every host see it, and this is the delta of the loop device's
#                      sectors read (/sys/block/loopN/stat, field 3, × 512) over the command.
#                      Before every job the images' clean pages are dropped (posix_fadvise
#                      DONTNEED on each image file: only those pages, not the machine's page
#                      cache), so a job that reads the image reads it from the device: a job
#                      that reads the whole image shows SIZE (plus some readahead/metadata), one
#                      that only stats it ~0. Nothing else uses that file system.
#   evictions          entries (DIGEST, inode) some host's cache had before the job and not after
#                      (DIR/entries listed outside imgcast), summed over the hosts
#   evicted_in_use     a job "runs" after staging: it holds its image in use on every host (a
#                      shared flock() on DIR/entries/DIGEST, taken under the cache's lock as
#                      imgcast takes its pins: perf/cache_bench.py pin) while the next OVERLAP jobs
#                      stage, then ends (pin released, its DST removed); one long job (LONG_JOB,
#                      auto: the first job of the least-run image) runs to the end of the
#                      sequence, so its image ages into the LRU end while in use (a recent job's
#                      image is never the LRU entry: without it pins are never tested).
#                      lru_in_use_skipped: hosts where an eviction happened while the least
#                      recently used entry (by the records' last_used_ns) was in use. After every job, every
#                      image still pinned must still be its host's entry (same inode): each one
#                      that is not counts here. The goal is 0.
#   failed             imgcast exited non-zero, or a host did not verify, or a DST is not right:
#                      every host's DST must have the image's size (cache: be the entry's inode,
#                      a hard link), and one host's (job k: host k mod HOSTS; VERIFY=all: every
#                      host's; VERIFY=0: none) must cmp equal to the source
#
#   perf/run cache                                   8 hosts, 40 jobs, 6 × 256 MiB, budget 1G
#   HOSTS=4 JOBS=8 SIZE_MIB=32 BUDGET=128M perf/run cache   quick (< 1 min)
#   knobs: HOSTS (8), JOBS (40), IMAGES (6), SIZE_MIB (256), BUDGET (1G: --cache-max),
#          RATE_MBIT (1000), REPS (1: the whole sequence again, caches emptied first),
#          SEED (7), ZIPF_S (1.0), BURST (0.3), OVERLAP (2), LONG_JOB (auto | none | K), DEST_FS disk|tmpfs (disk: 8 caches
#          of 1 GiB do not fit in this machine's /dev/shm), MODES ("cache nocache"),
#          VERIFY (1 | all | 0), IMGCAST_FLAGS (none), OUT, PERF_CLUSTER or IMGCAST_CLUSTER
set -euo pipefail
n=${HOSTS:-8}
jobs=${JOBS:-40}
images=${IMAGES:-6}
size_mib=${SIZE_MIB:-256}
budget=${BUDGET:-1G}
rate=${RATE_MBIT:-1000}
reps=${REPS:-1}
seed=${SEED:-7}
zipf_s=${ZIPF_S:-1.0}
burst=${BURST:-0.3}
overlap=${OVERLAP:-2}
long_job=${LONG_JOB:-auto}
fs=${DEST_FS:-disk}
modes=${MODES:-cache nocache}
verify=${VERIFY:-1}
imgcast_flags=${IMGCAST_FLAGS:-}
here=$(cd "$(dirname "$0")/.." && pwd)
imgcast=${IMGCAST:-$here/build/cli/imgcast}
cluster=$here/perf/cluster
helper=$here/perf/cache_bench.py
export IMGCAST_CLUSTER=${PERF_CLUSTER:-${IMGCAST_CLUSTER:-0}}
net=10.77.$IMGCAST_CLUSTER
pfs=/run/imgcast-cachepfs-$IMGCAST_CLUSTER           # the images' own file system (mounted)
backing=/var/tmp/imgcast-cachepfs-$IMGCAST_CLUSTER.img
work=/var/tmp/imgcast-cachebench-$IMGCAST_CLUSTER     # reports, snapshots (not on $pfs)
cache_dir=/mnt/imgcast-node/cache
mkdir -p "$here/perf/results"
out=${OUT:-$here/perf/results/cache-$(date +%Y%m%dT%H%M%S).jsonl}
run_id=cache-$(date +%s)
[[ -x $imgcast ]] || { echo "cache_bench: build first ($imgcast missing)" >&2; exit 1; }
[[ $fs == tmpfs || $fs == disk || $fs == ext4 ]] || { echo "cache_bench: DEST_FS is tmpfs, disk or ext4, not '$fs'" >&2; exit 1; }
hosts=$(seq -s, -f "$net.%g" 1 "$n")
image_bytes=$((size_mib * 1048576))

loopdev=
declare -A pin_pid=() pin_digest=() pin_dst=()
window=()   # job keys whose pins are held, oldest first
long_keys=()  # the long job's pins (until the end of the rep)
release_pin() {  # release_pin KEY: the job ends
  local key=$1 h
  kill -TERM "${pin_pid[$key]}" 2>/dev/null || true
  wait "${pin_pid[$key]}" 2>/dev/null || true
  for ((h = 0; h < n; h++)); do rm -f "$node_root/h$h/${pin_dst[$key]}"; done
  unset "pin_pid[$key]" "pin_digest[$key]" "pin_dst[$key]"
}
release_all() {
  local key
  for key in "${window[@]}" "${long_keys[@]}"; do release_pin "$key"; done
  window=()
  long_keys=()
}
cleanup() {
  set +e
  release_all
  "$cluster" down
  mountpoint -q "$pfs" && umount "$pfs"
  [[ -n $loopdev ]] && losetup -d "$loopdev"
  rm -rf "$pfs" "$backing" "$work"
}
trap cleanup EXIT INT TERM

"$cluster" down
IMGCAST_CLUSTER_STORAGE=$fs "$cluster" up "$n" "$rate" >/dev/null
node_root=$("$cluster" node-root)
rm -rf "$work"; mkdir -p "$work" "$pfs"
mountpoint -q "$pfs" && umount "$pfs"
rm -f "$backing"
truncate -s $(( images * size_mib * 11 / 10 + 64 ))M "$backing"
loopdev=$(losetup -f --show "$backing")
mkfs.ext4 -q -F "$loopdev"
mount "$loopdev" "$pfs"
stat_file=/sys/block/$(basename "$loopdev")/stat
sectors_read() { awk '{print $3}' "$stat_file"; }

echo "== $images images of $size_mib MiB on $loopdev (ext4, mounted at $pfs)"
srcs=()
for ((i = 0; i < images; i++)); do
  head -c "$image_bytes" /dev/urandom > "$pfs/img$i.sif"
  srcs+=("$pfs/img$i.sif")
done
sync -f "$pfs/img0.sif"

mapfile -t sequence < <(python3 "$helper" seq "$seed" "$jobs" "$images" "$burst" "$zipf_s")
if [[ $long_job == auto ]]; then
  long_job=$(python3 -c 'import sys; s = sys.argv[1:]; print(min(range(len(s)), key=lambda j: (s.count(s[j]), j)))' "${sequence[@]}")
fi
[[ $long_job == none ]] && long_job=-1
echo "   long job: $long_job (img${sequence[$long_job]:-}), in use until the end of the sequence"

now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.3f", e - s }'; }
cpu_sample() { awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
cache_dirs=()
for ((h = 0; h < n; h++)); do cache_dirs+=("$node_root/h$h/cache"); done

exec_overhead=$(for _ in 1 2 3 4 5; do s=$(now); "$cluster" exec h0 true; elapsed "$s" "$(now)"; echo; done |
  sort -n | sed -n 3p)

# run_job REP JOB MODE: one job's staging, its checks, its record; in cache mode the job then
# "runs" (its pins held) and the job OVERLAP before it ends.
run_job() {
  local rep=$1 job=$2 mode=$3 img=${sequence[$2]} h
  local src=$pfs/img$img.sif dst_name=${mode}-r$rep-j$job.sif
  local dst=/mnt/imgcast-node/$dst_name key=r$rep-j$job
  local cache_flags=()
  [[ $mode == cache ]] && cache_flags=(--cache --cache-dir "$cache_dir" --cache-max "$budget")
  python3 "$helper" drop "${srcs[@]}"
  [[ $mode == cache ]] && python3 "$helper" entries "${cache_dirs[@]}" > "$work/before.json"
  local r0 r1 s e rc=0 b0 t0 b1 t1
  read -r b0 t0 < <(cpu_sample)
  r0=$(sectors_read)
  s=$(now)
  # shellcheck disable=SC2086
  timeout 600 "$cluster" exec h0 "$imgcast" replicate "${cache_flags[@]}" "$src" "$dst" \
    --hosts "$hosts" --rsh "$cluster rsh" $imgcast_flags --json > "$work/report.json" 2> "$work/err.txt" || rc=$?
  e=$(now)
  r1=$(sectors_read)
  read -r b1 t1 < <(cpu_sample)
  local seconds; seconds=$(elapsed "$s" "$e")
  local cpu; cpu=$(awk -v b0="$b0" -v t0="$t0" -v b1="$b1" -v t1="$t1" 'BEGIN { printf "%.1f", 100 * (b1 - b0) / ((t1 - t0) > 0 ? (t1 - t0) : 1) }')
  local digest; digest=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('digest_xxh3_128',''))" "$work/report.json" 2>/dev/null || true)
  local snapshot=()
  if [[ $mode == cache ]]; then
    python3 "$helper" entries "${cache_dirs[@]}" > "$work/after.json"
    snapshot=(--before "$work/before.json" --after "$work/after.json")
  fi
  # DST on every host: the image's size (cache: the entry's own inode); one host's (or every
  # host's) bytes against the source.
  local dst_ok=true bad=()
  for ((h = 0; h < n; h++)); do
    local path=$node_root/h$h/$dst_name
    if [[ $(stat -c %s "$path" 2>/dev/null) != "$image_bytes" ]]; then dst_ok=false; bad+=("h$h:size"); continue; fi
    if [[ $mode == cache && $(stat -c %i "$path") != $(stat -c %i "$node_root/h$h/cache/entries/$digest" 2>/dev/null) ]]; then
      dst_ok=false; bad+=("h$h:not-the-entry")
    fi
    if [[ $verify == all || ($verify == 1 && $h == $((job % n))) ]]; then
      cmp -s "$src" "$path" || { dst_ok=false; bad+=("h$h:content"); }
    fi
  done
  # Images still in use by earlier jobs: each must still be its host's entry.
  local evicted_in_use=0 key2
  if [[ $mode == cache ]]; then
    for key2 in "${window[@]}" "${long_keys[@]}"; do
      evicted_in_use=$((evicted_in_use + $(python3 "$helper" lost "$work/pin-$key2.ready" "${pin_digest[$key2]}")))
    done
  fi
  local pinned_now="" k3
  for k3 in "${window[@]}" "${long_keys[@]}"; do pinned_now+="${pin_digest[$k3]} "; done
  python3 "$helper" record "$out" --report "$work/report.json" "${snapshot[@]}" --pinned "$pinned_now" \
    bench=cache run_id="$run_id" mode="$mode" rep="$rep" job="$job" image="$img" \
    nodes="$n" images="$images" size_mib="$size_mib" budget="\"$budget\"" jobs="$jobs" reps="$reps" \
    seed="$seed" zipf_s="$zipf_s" burst="$burst" overlap="$overlap" long_job="$long_job" rate_mbit="$rate" dest_fs="$fs" \
    seconds="$seconds" exit_code="$rc" source_bytes_read=$(( (r1 - r0) * 512 )) \
    dst_ok="$dst_ok" dst_problems="\"${bad[*]:-}\"" evicted_in_use="$evicted_in_use" \
    pinned_by_running_jobs="$(( ${#window[@]} + ${#long_keys[@]} ))" machine_cpu_percent="$cpu" \
    exec_overhead_seconds="$exec_overhead" > "$work/row.json"
  python3 - "$work/row.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"| {r['rep']} | {r['job']:>3} | img{r['image']} | {r['mode']:<7} | {r['seconds']:>7.3f} | "
      f"{r['cached']}/{r['nodes']} {r['outcome']:<7} | {r['source_bytes_read'] / 1048576:>7.1f} | "
      f"{r.get('evictions', '-')!s:>3} {('(' + str(r['lru_in_use_skipped']) + ')') if r.get('lru_in_use_skipped') else ''} | {r['evicted_in_use']} | "
      f"{'FAILED ' + r['dst_problems'] + ' ' + str(r.get('failures', '')) if r['failed'] else 'ok'} | {r['machine_cpu_percent']} |")
PY
  if [[ $rc != 0 ]]; then sed -n 1,5p "$work/err.txt" >&2; fi
  if [[ $mode == nocache ]]; then
    for ((h = 0; h < n; h++)); do rm -f "$node_root/h$h/$dst_name"; done
    return 0
  fi
  # The job runs: its image pinned on every host while the next OVERLAP jobs stage.
  if [[ -n $digest && $rc == 0 ]]; then
    rm -f "$work/pin-$key.ready"
    python3 "$helper" pin "$work/pin-$key.ready" "$digest" "${cache_dirs[@]}" & pin_pid[$key]=$!
    pin_digest[$key]=$digest
    pin_dst[$key]=$dst_name
    for _ in $(seq 200); do [[ -e $work/pin-$key.ready ]] && break; sleep 0.02; done
    if [[ $job == "$long_job" ]]; then long_keys+=("$key"); else window+=("$key"); fi
  else
    for ((h = 0; h < n; h++)); do rm -f "$node_root/h$h/$dst_name"; done
  fi
  while ((${#window[@]} > overlap)); do
    release_pin "${window[0]}"
    window=("${window[@]:1}")
  done
}

echo "== $n hosts, $rate Mbit/s, $fs node-local storage, cache budget $budget, $jobs jobs, REPS=$reps, OVERLAP=$overlap; entering h0 costs $exec_overhead s; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| rep | job | image | mode    | seconds | cached       | src MiB | ev. | in use ev. | result | CPU % |"
for ((rep = 1; rep <= reps; rep++)); do
  release_all
  for ((h = 0; h < n; h++)); do rm -rf "${cache_dirs[$h]}"; done
  for ((job = 0; job < jobs; job++)); do
    order=$modes
    ((job % 2 == 1)) && order=$(echo "$modes" | tr ' ' '\n' | tac | tr '\n' ' ')
    for mode in $order; do run_job "$rep" "$job" "$mode"; done
  done
done
release_all
echo "== done; load: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$helper" summary "$out" "$run_id"
echo "results: $out"
