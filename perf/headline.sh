#!/usr/bin/env bash
# Issue 20's numbered cases, the headline figures: imgcast's whole command (wall time from its
# start to its exit) with DEFAULT flags, against the reference each case names, measured in the
# same run with interleaved reps (imgcast rep 1, reference rep 1, imgcast rep 2, ...). Writes
# JSON lines (every row tagged case=caseK) and the report, whose first table gives each case's
# medians and ratios with the goal:
#
#   case1  16 hosts, 200 Mbit/s, 256 MiB, tmpfs   imgcast ÷ ideal S*8/RATE (≤ 1.15) and
#                                                 ÷ the calibration ring, every link busy (≤ 1.05)
#   case2  2 hosts, 10 Gbit/s, 1 GiB, tmpfs       imgcast ÷ iperf3 over the link, memory to
#                                                 memory (≤ 1.3); CPU per GiB per node ÷
#                                                 iperf3's send + receive per GiB (≤ 1.3)
#   case3  2 hosts, 10 Gbit/s, 1 GiB, disk        imgcast ÷ the netcat pipeline (≤ 1.0)
#   case4  4 hosts, 1 Gbit/s, 1 GiB, disk         imgcast ÷ max(one link's iperf3 time, the
#                                                 destinations' parallel dd conv=fsync floor)
#                                                 (≤ 1.15)
#
# "disk" gives every host its own ext4 (mkfs defaults, so with a journal) on a loop device over
# /var/tmp (DISK_FS=ext4, the default), as every node has its own disk; DISK_FS=disk puts the hosts'
# directories straight under /var/tmp, whose ext4 on this VM has no journal and a slow inode
# allocator after deletions. "tmpfs" is under /dev/shm (perf/cluster, IMGCAST_CLUSTER_STORAGE).
#
#   perf/run headline                      everything at the issue's sizes, REPS=3 (~15 min)
#   CASES="2 3" REPS=5 perf/run headline   some cases only
#   REPS=1 CASE1_NODES=4 CASE1_MIB=32 CASE2_MIB=128 CASE4_MIB=128 perf/run headline   quick
#   knobs: CASEk_NODES, CASEk_MIB, CASEk_MBIT (k = 1..4; case3 follows case2 unless set),
#          CASE1_PEERS="mpibcast-pipeline" (more systems interleaved into case1),
#          DISK_FS ext4|disk (cases 3 and 4, default ext4), TMPFS_FS tmpfs|hugetmpfs (cases 1
#          and 2, default tmpfs: /dev/shm as it is mounted, huge=never; hugetmpfs is a tmpfs per
#          host mounted huge=within_size, a choice an admin may make for node-local tmpfs),
#          IMGCAST_FLAGS (default none), OUT, PERF_CLUSTER (emulated cluster id, default 0)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cases=${CASES:-1 2 3 4}
reps=${REPS:-3}
disk_fs=${DISK_FS:-ext4}
tmpfs_fs=${TMPFS_FS:-tmpfs}
[[ $tmpfs_fs == tmpfs || $tmpfs_fs == hugetmpfs ]] || { echo "headline: TMPFS_FS is tmpfs or hugetmpfs, not '$tmpfs_fs'" >&2; exit 1; }
[[ $disk_fs == ext4 || $disk_fs == disk ]] || { echo "headline: DISK_FS is ext4 or disk, not '$disk_fs'" >&2; exit 1; }
out=${OUT:-$here/results/headline-$(date +%Y%m%dT%H%M%S).jsonl}
mkdir -p "$(dirname "$out")"

run_case() {  # run_case K NODES MIB MBIT DEST_FS SYSTEMS
  echo "== case$1: $2 hosts, $4 Mbit/s, $3 MiB, $5 destinations: $6 (REPS=$reps, interleaved)"
  CASE=case$1 NODES=$2 SIZES_MIB=$3 RATE_MBIT=$4 DEST_FS=$5 SYSTEMS=$6 REPS=$reps \
    CALIBRATE=ideal NO_REPORT=1 OUT=$out "$here/emulated.sh"
}

for k in $cases; do
  case $k in
    1) run_case 1 "${CASE1_NODES:-16}" "${CASE1_MIB:-256}" "${CASE1_MBIT:-200}" "$tmpfs_fs" \
         "imgcast ring ${CASE1_PEERS:-}" ;;
    2) run_case 2 "${CASE2_NODES:-2}" "${CASE2_MIB:-1024}" "${CASE2_MBIT:-10000}" "$tmpfs_fs" "imgcast link" ;;
    3) run_case 3 "${CASE3_NODES:-${CASE2_NODES:-2}}" "${CASE3_MIB:-${CASE2_MIB:-1024}}" \
         "${CASE3_MBIT:-${CASE2_MBIT:-10000}}" "$disk_fs" "imgcast netcat" ;;
    4) run_case 4 "${CASE4_NODES:-4}" "${CASE4_MIB:-1024}" "${CASE4_MBIT:-1000}" "$disk_fs" \
         "imgcast link ddfloor" ;;
    *) echo "headline: CASES are 1 2 3 4, not '$k'" >&2; exit 1 ;;
  esac
done
echo
python3 "$here/report.py" "$out"
