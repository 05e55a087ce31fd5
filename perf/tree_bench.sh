#!/usr/bin/env bash
# Issue 22's numbers: a directory tree (a generated conda/venv-like environment, perf/tree_gen.py:
# FILES regular files, mostly 0-12 KiB, six MiB-sized shared objects, relative symlinks, two
# hardlinks, empty dirs) staged from h0's "parallel filesystem" to every host of an emulated
# cluster, against the same bytes as one file and what users do today. Whole-command wall time,
# default flags, interleaved reps (rep 1 of every system, then rep 2, ...), medians:
#
#   tree      imgcast replicate TREE /mnt/imgcast-node/env
#   onefile   imgcast replicate of the same bytes as ONE file (a tar of the tree, made once
#             before the reps, not timed) to /mnt/imgcast-node/env.tar   (goal: tree ≤ 1.15×)
#   rawfile   imgcast replicate of one file holding exactly the tree's file bytes (every file
#             concatenated in name order, made once, not timed): the tar above is larger than the
#             payload (a 512-byte header per entry and padding to 512 B), this is not
#   tarpipe   tar cf on h0 + imgcast replicate of that tar + tar xf on every host in parallel
#             into its node-local dir (+ sync -f)                        (goal: tree ≤ 1.0×)
#   tree1     (a reference, no network) imgcast replicate TREE to h0 alone: the root's walk and
#             read plus one host's placement, what every host's CPU pays at least once
#   untar1    (a reference) tar xf of the tar on h0 alone: one host's untar
#   rsync     every host copying the tree from the storage host at once: an rsync daemon on h0
#             serving the tree, `rsync -aH rsync://h0/env/ /mnt/imgcast-node/env/` on every host
#             in parallel (+ sync -f): cp -a from NFS with the server's work made visible
#
# The "PFS" is a tmpfs of its own (/dev/shm/imgcast-treepfs-I), so a fanotify mark on its
# filesystem (perf/fanotify_opens.c, built here with cc) counts every open of the source's files
# by every host of the whole job, whatever mount namespace it runs in: opens per regular file
# (distinct non-empty inodes, as an empty file has nothing to read; goal for imgcast: 1) beside each row. Every copy is compared with the source
# after every run (type, mode, size, link count and link target of every entry, and the bytes of
# every file); a run that did not verify is marked and not counted.
#   mpitar    tar cf + MPI_Bcast of the tar (Open MPI's pipeline at its best setting here,
#             perf/comparators/mpi_bcast.sh) + tar xf on every host: python-mpi-bcast, dbcast
#   sbcasttar tar cf + Slurm's sbcast of the tar in a batch job + tar xf on every host
#             (both bring the cluster up with --slurm: a control host for mpirun and sbatch)
#
#   perf/run tree                                  16 hosts, 200 Mbit/s, 20000 files, REPS=2
#   FILES=5000 N=4 REPS=1 perf/run tree            quick
#   knobs: FILES (20000), N (16), RATE_MBIT (200), REPS (2), DEST_FS tmpfs|disk|ext4 (tmpfs),
#          SYSTEMS ("tree onefile rawfile tarpipe mpitar sbcasttar rsync tree1 untar1"), SEED (22), VERIFY (1), IMGCAST_FLAGS (none),
#          OUT, PERF_CLUSTER or IMGCAST_CLUSTER (emulated cluster id, default 0)
set -euo pipefail
files=${FILES:-20000}
n=${N:-16}
rate=${RATE_MBIT:-200}
reps=${REPS:-2}
fs=${DEST_FS:-tmpfs}
systems=${SYSTEMS:-tree onefile rawfile tarpipe mpitar sbcasttar rsync tree1 untar1}
seed=${SEED:-22}
verify=${VERIFY:-1}
imgcast_flags=${IMGCAST_FLAGS:-}
here=$(cd "$(dirname "$0")/.." && pwd)
imgcast=${IMGCAST:-$here/build/cli/imgcast}
cluster=$here/perf/cluster
export IMGCAST_CLUSTER=${PERF_CLUSTER:-${IMGCAST_CLUSTER:-0}}
net=10.77.$IMGCAST_CLUSTER
pfs=/dev/shm/imgcast-treepfs-$IMGCAST_CLUSTER
tree=$pfs/env
work=$pfs/work   # on the same filesystem; opens there are not counted (other prefix)
mkdir -p "$here/perf/results"
out=${OUT:-$here/perf/results/tree-$(date +%Y%m%dT%H%M%S).jsonl}
run_id=tree-$(date +%s)
[[ -x $imgcast ]] || { echo "tree_bench: build first ($imgcast missing)" >&2; exit 1; }
[[ $fs == tmpfs || $fs == disk || $fs == ext4 ]] || { echo "tree_bench: DEST_FS is tmpfs, disk or ext4, not '$fs'" >&2; exit 1; }
[[ " $systems " != *" rsync "* ]] || command -v rsync >/dev/null ||
  { echo "tree_bench: rsync missing (scripts/setup.sh installs it)" >&2; exit 1; }
hosts=$(seq -s, -f "$net.%g" 1 "$n")

counter_pid=
rsyncd_pid=
cleanup() {
  [[ -z $counter_pid ]] || kill "$counter_pid" 2>/dev/null || true
  if [[ -n $rsyncd_pid ]]; then kill "$rsyncd_pid" 2>/dev/null; wait "$rsyncd_pid" 2>/dev/null; fi
  "$cluster" down
  mountpoint -q "$pfs" && umount "$pfs"
  rm -rf "$pfs"
}
trap cleanup EXIT INT TERM

"$cluster" down
# The PFS is mounted before the cluster comes up: slurmd's mount namespace is a copy of the
# mounts at its start, and sbcast's job on h0 must see the tar.
mkdir -p "$pfs"
mountpoint -q "$pfs" || mount -t tmpfs -o size=4g,mode=0755 imgcast-treepfs "$pfs"
slurm=()  # the MPI and sbcast comparators need the control host and Slurm
[[ " $systems " != *" mpitar "* && " $systems " != *" sbcasttar "* ]] || slurm=(--slurm)
IMGCAST_CLUSTER_STORAGE=$fs "$cluster" up "$n" "$rate" "${slurm[@]}" >/dev/null
node_root=$("$cluster" node-root)
mkdir -p "$work"
cc -O2 -o "$work/fanotify_opens" "$here/perf/fanotify_opens.c"

echo "== generating $files files under $tree (seed $seed)"
summary=$(python3 "$here/perf/tree_gen.py" "$tree" "$files" "$seed")
echo "   $summary"
tar cf "$pfs/env.tar" -C "$pfs" env      # the same bytes as one file, made once, not timed
(cd "$tree" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r cat) > "$pfs/env.raw"
tree_bytes=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['bytes'])" "$summary")
tar_bytes=$(stat -c %s "$pfs/env.tar")
inodes=$(find "$tree" -type f -printf '%i\n' | sort -u | wc -l)
# Opens per file count against the non-empty ones: neither imgcast nor tar opens an empty file
# (nothing to read), rsync does.
nonempty=$(find "$tree" -type f -size +0 -printf '%i\n' | sort -u | wc -l)
size_mib=$(awk -v b="$tree_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
ideal=$(awk -v b="$tar_bytes" -v r="$rate" 'BEGIN { printf "%.4f", b * 8 / (r * 1e6) }')

# The digest of a tree: every entry's type, mode, size (not for directories: it is the
# filesystem's), link count of files, link target; then every file's bytes in name order.
tree_digest() {
  (cd "$1" && {
    find . \( -type d -printf 'd %m %P\n' \) -o \( -type f -printf 'f %m %s %n %P\n' \) -o \
      -printf '%y %l %P\n' | LC_ALL=C sort | md5sum
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r cat | md5sum
  } | cut -c1-32 | tr '\n' ' ')
}
source_digest=$(tree_digest "$tree")
verified_copies() {  # verified_copies SYSTEM HOSTS
  local ok=0 n=$2
  if [[ $1 == onefile || $1 == rawfile ]]; then
    local ext=$([[ $1 == onefile ]] && echo tar || echo raw)
    for ((h = 0; h < n; h++)); do cmp -s "$pfs/env.$ext" "$node_root/h$h/env.$ext" && ok=$((ok + 1)); done
    echo "$ok"; return
  fi
  for ((h = 0; h < n; h++)); do
    if [[ $verify == 0 ]]; then [[ -d $node_root/h$h/env ]] && ok=$((ok + 1))
    else [[ -d $node_root/h$h/env && $(tree_digest "$node_root/h$h/env") == "$source_digest" ]] && ok=$((ok + 1))
    fi
  done
  echo "$ok"
}
clear_copies() {
  local h
  for ((h = 0; h < n; h++)); do rm -rf "$node_root/h$h"/env* "$node_root/h$h"/.env* "$node_root/h$h"/pipe.tar; done
  rm -f "$work"/pipe.tar
}

# An rsync daemon on h0 serving the tree read-only (started once; its own opens are counted
# only while a measured run is in progress).
start_rsyncd() {
  cat > "$work/rsyncd.conf" <<CONF
pid file = $work/rsyncd.pid
use chroot = no
max connections = 0
log file = $work/rsyncd.log
[env]
  path = $tree
  read only = yes
  uid = root
  gid = root
CONF
  "$cluster" exec h0 rsync --daemon --no-detach --address="$net.1" --port=8730 \
    --config="$work/rsyncd.conf" & rsyncd_pid=$!
  for _ in $(seq 50); do
    "$cluster" exec h1 rsync "rsync://$net.1:8730/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "tree_bench: the rsync daemon did not start" >&2; exit 1
}
[[ " $systems " != *" rsync "* ]] || start_rsyncd

imgcast_cmd() {  # imgcast_cmd SRC DST [HOSTS]: the whole command on h0, default flags
  # shellcheck disable=SC2086
  "$cluster" exec h0 "$imgcast" replicate "$1" "$2" --hosts "${3:-$hosts}" --rsh "$cluster rsh" \
    $imgcast_flags --json > "$work/imgcast.json"
}
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.3f", e - s }'; }
sync_flag() { [[ $fs != tmpfs ]] && echo "&& sync -f /mnt/imgcast-node" || true; }

# Each system prints "seconds [key=value ...]" (its parts, for the record).
run_tree() {
  local s; s=$(now); imgcast_cmd "$tree" /mnt/imgcast-node/env; elapsed "$s" "$(now)"; echo
}
run_onefile() {
  local s; s=$(now); imgcast_cmd "$pfs/env.tar" /mnt/imgcast-node/env.tar; elapsed "$s" "$(now)"; echo
}
run_rawfile() {
  local s; s=$(now); imgcast_cmd "$pfs/env.raw" /mnt/imgcast-node/env.raw; elapsed "$s" "$(now)"; echo
}
run_tree1() {
  local s; s=$(now); imgcast_cmd "$tree" /mnt/imgcast-node/env "$net.1"; elapsed "$s" "$(now)"; echo
}
run_untar1() {
  local s; s=$(now)
  "$cluster" exec h0 sh -c "tar xf $pfs/env.tar -C /mnt/imgcast-node $(sync_flag)"
  elapsed "$s" "$(now)"; echo
}
# tar cf on h0, then `BROADCAST...` (which must leave the tar at /mnt/imgcast-node/NAME on every
# host), then tar xf on every host at once. Prints the whole time and its three parts, and the
# seconds the broadcast reports of itself where it does (sbcast's, timed inside its batch job,
# leave out sbatch's queueing and job launch, which a job script that is already running on its
# allocation does not pay).
tar_broadcast_untar() {  # tar_broadcast_untar NAME BROADCAST...
  local name=$1 s t1 t2 e pids=() h failed=0 reported
  shift
  s=$(now)
  "$cluster" exec h0 tar cf "$work/pipe.tar" -C "$pfs" env
  t1=$(now)
  reported=$("$@" | tail -1)
  t2=$(now)
  for ((h = 0; h < n; h++)); do
    "$cluster" exec "h$h" sh -c "tar xf /mnt/imgcast-node/$name -C /mnt/imgcast-node $(sync_flag)" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  e=$(now)
  ((failed == 0)) || return 1
  echo "$(elapsed "$s" "$e") tar_seconds=$(elapsed "$s" "$t1") broadcast_seconds=$(elapsed "$t1" "$t2") untar_seconds=$(elapsed "$t2" "$e")$([[ $reported =~ ^[0-9.]+$ ]] && echo " broadcast_reported_seconds=$reported")"
}
run_tarpipe() { tar_broadcast_untar env.tar imgcast_cmd "$work/pipe.tar" /mnt/imgcast-node/env.tar; }
# What mpiFileUtils users and NERSC's python-mpi-bcast do: Open MPI's MPI_Bcast at its best
# setting here (pipeline, 64 MiB chunks, 512 KiB segments: perf/comparators/mpi_bcast.sh).
run_mpitar() {
  tar_broadcast_untar pipe.tar "$here/perf/comparators/mpi_bcast.sh" "$work/pipe.tar" "$n" 64 pipeline
}
# Slurm's sbcast of the tar in a batch job (its default fanout), then the untar.
run_sbcasttar() { tar_broadcast_untar pipe.tar "$here/perf/comparators/sbcast.sh" "$work/pipe.tar" "$n"; }
run_rsync() {
  local s pids=() h failed=0
  s=$(now)
  for ((h = 0; h < n; h++)); do
    "$cluster" exec "h$h" sh -c "rsync -aH rsync://$net.1:8730/env/ /mnt/imgcast-node/env/ $(sync_flag)" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  ((failed == 0)) || return 1
  elapsed "$s" "$(now)"; echo
}

cpu_sample() { awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
record() { python3 "$here/perf/record.py" "$out" "$@"; }

measure() {  # measure REP SYSTEM
  local rep=$1 system=$2 prefix=$tree variant hosts_expected=$n
  case $system in
    tree1) variant="imgcast, the tree, to h0 alone (reference)"; hosts_expected=1 ;;
    untar1) variant="tar xf on h0 alone (reference)"; hosts_expected=1; prefix=$pfs/env.tar ;;
    tree) variant="imgcast, the tree, defaults" ;;
    onefile) variant="imgcast, the tree's tar as one file, defaults"; prefix=$pfs/env.tar ;;
    rawfile) variant="imgcast, the tree's file bytes as one file, defaults"; prefix=$pfs/env.raw ;;
    tarpipe) variant="tar cf + imgcast + tar xf on every host" ;;
    mpitar) variant="tar cf + MPI_Bcast (Open MPI pipeline, 64 MiB chunks) + tar xf on every host" ;;
    sbcasttar) variant="tar cf + Slurm sbcast + tar xf on every host" ;;
    rsync) variant="rsync daemon on h0, rsync -aH from every host" ;;
    *) echo "tree_bench: unknown system '$system'" >&2; exit 1 ;;
  esac
  clear_copies
  rm -f "$work/ready"
  "$work/fanotify_opens" "$pfs" "$prefix" "$work/ready" > "$work/opens.json" & counter_pid=$!
  for _ in $(seq 100); do [[ -e $work/ready ]] && break; sleep 0.02; done
  local b0 t0 b1 t1 printed
  read -r b0 t0 < <(cpu_sample)
  printed=$("run_$system" 2>"$work/err.txt" | tail -1) || printed=FAILED
  read -r b1 t1 < <(cpu_sample)
  kill -TERM "$counter_pid"; wait "$counter_pid" || true; counter_pid=
  local ok; ok=$(verified_copies "$system" "$hosts_expected")
  local verified=true
  if [[ $printed == FAILED || $ok != "$hosts_expected" ]]; then verified=false; sed -n 1,5p "$work/err.txt" >&2; fi
  local seconds=${printed%% *} parts=()
  [[ $printed == *" "* ]] && read -r -a parts <<< "${printed#* }"
  [[ $seconds =~ ^[0-9.]+$ ]] || seconds=null
  local cpu; cpu=$(awk -v b0="$b0" -v t0="$t0" -v b1="$b1" -v t1="$t1" 'BEGIN { printf "%.1f", 100 * (b1 - b0) / ((t1 - t0) > 0 ? (t1 - t0) : 1) }')
  local opens; opens=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['regular_opens'])" "$work/opens.json")
  local per_file; per_file=$(awk -v o="$opens" -v f="$nonempty" -v s="$system" 'BEGIN { printf "%.3f", (s ~ /file$/ || s == "untar1") ? o : o / f }')
  local per_any; per_any=$(awk -v o="$opens" -v f="$inodes" 'BEGIN { printf "%.3f", o / f }')
  local extra=()
  if [[ $system != *tar* && $system != rsync && -s $work/imgcast.json ]]; then
    extra+=("$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('setup_seconds=%s transfer_seconds=%s' % (d.get('setup_seconds'), d.get('transfer_seconds')))" "$work/imgcast.json")")
  fi
  # shellcheck disable=SC2068
  record bench=tree run_id="$run_id" system="$system" variant="$variant" nodes="$n" \
    size_mib="$size_mib" tree_bytes="$tree_bytes" tar_bytes="$tar_bytes" files="$files" \
    distinct_files="$inodes" nonempty_files="$nonempty" rate_mbit="$rate" rep="$rep" seconds="$seconds" \
    ideal_seconds="$ideal" machine_cpu_percent="$cpu" verified="$verified" copies="\"$ok/$hosts_expected\"" \
    hosts_expected="$hosts_expected" dest_fs="$fs" source_opens="$(cat "$work/opens.json")" opens_per_file="$per_file" opens_per_any_file="$per_any" \
    "${parts[@]}" ${extra[@]} > /dev/null
  printf '| %-8s | %s | %-8s | %-7s | %-6s | %s\n' "$system" "$rep" "$seconds" "$opens" "$per_file" \
    "$([[ $verified == true ]] && echo "verified $ok/$hosts_expected" || echo "NOT VERIFIED $ok/$hosts_expected")"
  rm -f "$work/imgcast.json"
}

echo "== $n hosts, $rate Mbit/s, $fs destinations, $size_mib MiB in $files files ($inodes distinct, $nonempty non-empty), tar $tar_bytes B, ideal $ideal s, REPS=$reps"
echo "| system   | rep | seconds  | opens   | /file  | copies"
for ((rep = 1; rep <= reps; rep++)); do
  for system in $systems; do measure "$rep" "$system"; done
done
clear_copies

python3 - "$out" "$run_id" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if r.get("run_id") == sys.argv[2]]
med = {}
for system in dict.fromkeys(r["system"] for r in rows):
    ok = [r for r in rows if r["system"] == system and r["verified"] and r["seconds"] is not None]
    if ok:
        med[system] = (statistics.median(r["seconds"] for r in ok), len(ok),
                       statistics.median(r["opens_per_file"] for r in ok), ok[0]["variant"])
r0 = rows[0]
print(f"\n{r0['nodes']} hosts, {r0['rate_mbit']} Mbit/s, {r0['dest_fs']}, {r0['files']} files, "
      f"{r0['size_mib']} MiB (ideal for the tar's bytes {r0['ideal_seconds']} s)\n")
print("| system | what | median s (runs) | tree ÷ this | source opens per file |")
print("|---|---|---|---|---|")
tree = med.get("tree", (None,))[0]
for system, (s, k, o, v) in med.items():
    ratio = f"{tree / s:.2f}" if tree else "-"
    opens = f"{o:g} (of the one file)" if system.endswith("file") or system == "untar1" else f"{o:g}"
    print(f"| {system} | {v} | {s:.2f} ({k}) | {ratio} | {opens} |")
goals = {"onefile": "≤ 1.15", "rawfile": "≤ 1.15", "tarpipe": "≤ 1.0", "mpitar": "-",
         "sbcasttar": "-", "rsync": "-"}
for system, goal in goals.items():
    if tree and system in med:
        print(f"tree ÷ {system}: {tree / med[system][0]:.2f} (goal {goal})")
for system in med:
    own = [r["tar_seconds"] + r["broadcast_reported_seconds"] + r["untar_seconds"] for r in rows
           if r["system"] == system and r["verified"] and "broadcast_reported_seconds" in r]
    if tree and own and system == "sbcasttar":  # a job script pays mpirun's start, not sbatch's
        print(f"tree ÷ {system} without the batch job's launch (tar + its own seconds + untar, "
              f"median {statistics.median(own):.2f} s): {tree / statistics.median(own):.2f}")
PY
echo "results: $out"
