#!/usr/bin/env bash
# One launcher test case on the real Slurm that `perf/cluster up 4 0 --slurm` started as cluster 1
# (and Open MPI's mpirun on the same hosts): every path a user takes to stage an image, each
# host's copy compared with the source byte for byte. Clients (sbatch, srun, mpirun) run on the
# control host "ctl". Exit 77 (CTest: skipped) when the launcher is not installed.
#
#   launcher_test.sh CASE IMGCAST
set -euo pipefail

case_name=${1:?usage: launcher_test.sh CASE IMGCAST}
imgcast=${2:?usage: launcher_test.sh CASE IMGCAST}
here=$(cd "$(dirname "$0")/../.." && pwd)
# Cluster 1 is CTest's fixture; IMGCAST_LAUNCHER_TEST_CLUSTER=I runs a case by hand against
# another (perf/cluster up 4 0 --slurm with IMGCAST_CLUSTER=I) without touching a running suite.
export IMGCAST_CLUSTER=${IMGCAST_LAUNCHER_TEST_CLUSTER:-1}
cluster=$here/perf/cluster
state=/run/imgcast-cluster$([[ $IMGCAST_CLUSTER == 0 ]] || echo "-$IMGCAST_CLUSTER")
node_root=$("$cluster" node-root)
subnet=10.77.$IMGCAST_CLUSTER.0/24
on_ctl=("$cluster" exec ctl)  # clients run on the control host

command -v sbatch >/dev/null || { echo "SKIP: slurm-wlm is not installed"; exit 77; }
[[ -e $state/size ]] || { echo "FAIL: no Slurm cluster (the slurm_cluster_up fixture failed?)"; exit 1; }
nodes=$(cut -d' ' -f1 "$state/size")
all_hosts=$(seq -s, -f 'h%g' 0 $((nodes - 1)))

# A shared working directory (the job's submit dir: the hook's rendezvous lives there).
work=$(mktemp -d /tmp/imgcast-launcher-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
head -c $((24 * 1024 * 1024 + 12345)) /dev/urandom > source.img
want=$(md5sum < source.img | cut -d' ' -f1)

clean_nodes() { rm -rf "${node_root:?}"/h*/* "${node_root:?}"/h*/.[!.]*; }

# verify NAME COUNT: the first COUNT nodes hold /mnt/imgcast-node/NAME equal to the source, and
# no node holds a temporary file.
verify() {
  local name=$1 count=$2
  for ((k = 0; k < count; k++)); do
    local copy=$node_root/h$k/$name
    [[ -f $copy ]] || { echo "FAIL: h$k has no $name"; ls -la "$node_root/h$k"; exit 1; }
    [[ $(md5sum < "$copy" | cut -d' ' -f1) == "$want" ]] || { echo "FAIL: h$k's $name differs"; exit 1; }
    if ls -a "$node_root/h$k" | grep -q 'imgcast-.*\.tmp$'; then
      echo "FAIL: h$k kept a temporary file"; exit 1
    fi
  done
  echo "ok: $count nodes hold a verified $name"
}

clean_nodes
case $case_name in
  sbatch_replicate)
    # `imgcast replicate` in a batch script: hosts from SLURM_JOB_NODELIST, agents as one srun step.
    cat > job.sh <<JOB
#!/bin/bash
"$imgcast" replicate "$work/source.img" /mnt/imgcast-node/app.img
JOB
    timeout 120 "${on_ctl[@]}" sbatch --wait -N "$nodes" -o job.out job.sh || { cat job.out; exit 1; }
    cat job.out
    grep -q "total: $nodes/$nodes nodes verified" job.out
    verify app.img "$nodes"
    ;;
  sbatch_one_node_fails)
    # The srun step's task fails on one node (imgcast missing there, here a wrapper that exits):
    # that host is named, the others verify, and the run exits 3.
    cat > agent-wrapper <<WRAP
#!/bin/sh
[ "\$(hostname)" = h2 ] && { echo "no imgcast on h2" >&2; exit 1; }
exec "$imgcast" "\$@"
WRAP
    chmod +x agent-wrapper
    cat > job.sh <<JOB
#!/bin/bash
"$imgcast" replicate "$work/source.img" /mnt/imgcast-node/app.img --agent-path "$work/agent-wrapper" --connect-timeout 3
echo "exit \$?"
JOB
    timeout 120 "${on_ctl[@]}" sbatch --wait -N "$nodes" -o job.out job.sh || true
    cat job.out
    grep -q "exit 3" job.out
    grep -q "h2 (timed out after 3000 ms waiting for its agent to join" job.out
    grep -q "total: $((nodes - 1))/$nodes nodes verified" job.out
    for k in 0 1 3; do
      [[ $(md5sum < "$node_root/h$k/app.img" | cut -d' ' -f1) == "$want" ]] || { echo "FAIL: h$k"; exit 1; }
    done
    [[ ! -e $node_root/h2/app.img ]]
    echo "ok: h2 failed alone"
    ;;
  srun_hook)
    # The hook under srun, two tasks per node (one transfer per node), then a command that sees
    # IMGCAST_PATH.
    timeout 120 "${on_ctl[@]}" srun -N "$nodes" --ntasks-per-node=2 "$imgcast" -q hook "$work/source.img" \
      /mnt/imgcast-node/hook.img -- sh -c 'md5sum < "$IMGCAST_PATH"' > out.txt
    cat out.txt
    [[ $(grep -c "$want" out.txt) == $((2 * nodes)) ]]
    verify hook.img "$nodes"
    # A second call in the same job is a no-op on every node (recorded per job).
    cat > again.sh <<JOB
#!/bin/bash
srun -N $nodes "$imgcast" hook "$work/source.img" /mnt/imgcast-node/again.img
srun -N $nodes "$imgcast" hook "$work/source.img" /mnt/imgcast-node/again.img
JOB
    timeout 120 "${on_ctl[@]}" sbatch --wait -N "$nodes" -o again.out again.sh || { cat again.out; exit 1; }
    cat again.out
    [[ $(grep -c "nodes verified" again.out) == 1 ]]
    verify again.img "$nodes"
    ;;
  spank_srun)
    timeout 120 "${on_ctl[@]}" srun -N "$nodes" --imgcast="$work/source.img:/mnt/imgcast-node/spank.img" \
      sh -c 'echo "$IMGCAST_PATH $(md5sum < "$IMGCAST_PATH")"' > out.txt
    cat out.txt
    [[ $(grep -c "/mnt/imgcast-node/spank.img $want" out.txt) == "$nodes" ]]
    verify spank.img "$nodes"
    ;;
  spank_user)
    # An ordinary user's job (nobody): slurmstepd drops only its effective ids before the
    # plugin's user_init, and the imgcast the plugin starts must be that user through and
    # through: the copy is the user's, made in the user's directory, and the step runs.
    chmod 0755 "$work" && chmod 0644 source.img
    mkdir user && chown nobody:nogroup user
    for ((k = 0; k < nodes; k++)); do
      install -d -o nobody -g nogroup "$node_root/h$k/user"
    done
    cd user  # the submit dir, where the hook's rendezvous lives, is the user's
    timeout 120 "${on_ctl[@]}" setpriv --reuid=nobody --regid=nogroup --clear-groups \
      srun -N "$nodes" --imgcast="$work/source.img:/mnt/imgcast-node/user/spank.img" \
      sh -c 'echo "$(id -u) $(stat -c %U "$IMGCAST_PATH") $(md5sum < "$IMGCAST_PATH")"' > ../out.txt
    cd ..
    cat out.txt
    [[ $(grep -c "^65534 nobody $want" out.txt) == "$nodes" ]]
    verify user/spank.img "$nodes"
    ;;
  spank_sbatch)
    # #SBATCH --imgcast: the batch step is skipped; the first srun stages, the second finds it.
    cat > job.sh <<JOB
#!/bin/bash
#SBATCH --imgcast=$work/source.img:/mnt/imgcast-node/sbatch.img,transport=tcp
srun -N $nodes sh -c 'echo "step1 \$IMGCAST_PATH"; md5sum < "\$IMGCAST_PATH"'
srun -N 2 sh -c 'echo "step2 \$IMGCAST_PATH"'
JOB
    timeout 120 "${on_ctl[@]}" sbatch --wait -N "$nodes" -o job.out job.sh || { cat job.out; exit 1; }
    cat job.out
    [[ $(grep -c "$want" job.out) == "$nodes" ]]
    [[ $(grep -c "step2 /mnt/imgcast-node/sbatch.img" job.out) == 2 ]]
    verify sbatch.img "$nodes"
    ;;
  spank_cache)
    # cache=yes: each node's copy goes through its node cache, and the entry is pinned (a shared
    # flock held by slurmstepd) while the step's tasks run, and free once the step ends.
    spec="$work/source.img:/mnt/imgcast-node/cached.img,cache=yes,cache-dir=/mnt/imgcast-node/cache"
    timeout 120 "${on_ctl[@]}" srun -N "$nodes" --imgcast="$spec" sh -c '
      entry=$(ls /mnt/imgcast-node/cache/entries | grep -v json)
      if flock -n -x "/mnt/imgcast-node/cache/entries/$entry" true; then echo NOT-PINNED; else echo PINNED; fi
      md5sum < "$IMGCAST_PATH"' > out.txt
    cat out.txt
    [[ $(grep -c "^PINNED" out.txt) == "$nodes" ]]
    [[ $(grep -c "$want" out.txt) == "$nodes" ]]
    verify cached.img "$nodes"
    for ((k = 0; k < nodes; k++)); do
      entries=("$node_root/h$k"/cache/entries/*[0-9a-f])
      [[ ${#entries[@]} == 1 ]] || { echo "FAIL: h$k's cache holds ${#entries[@]} entries"; exit 1; }
      flock -n -x "${entries[0]}" true || { echo "FAIL: h$k's entry is still pinned after the step"; exit 1; }
    done
    echo "ok: pinned during the step, free after it"
    ;;
  spank_sources)
    # Several sources in one transfer: an image file and a directory (its name holds a ':',
    # written '\:') go into the directory DST on every node, each by its last component.
    mkdir -p "env:v2/lib" && printf 'python = 3.11\n' > "env:v2/pyvenv.cfg"
    head -c 300000 /dev/urandom > "env:v2/lib/blob" && ln -s ../pyvenv.cfg "env:v2/lib/cfg"
    timeout 120 "${on_ctl[@]}" srun -N "$nodes" \
      --imgcast="$work/source.img:$work/env\:v2:/mnt/imgcast-node/job,transport=tcp" \
      sh -c 'cd "$IMGCAST_PATH" && echo "$PWD $(md5sum < source.img) $(cat env:v2/lib/cfg)"' > out.txt
    cat out.txt
    [[ $(grep -c "^/mnt/imgcast-node/job $want .*python = 3.11" out.txt) == "$nodes" ]]
    for ((k = 0; k < nodes; k++)); do
      copy=$node_root/h$k/job
      [[ $(md5sum < "$copy/source.img" | cut -d' ' -f1) == "$want" ]] || { echo "FAIL: h$k"; exit 1; }
      diff -r --no-dereference "env:v2" "$copy/env:v2" || { echo "FAIL: h$k's env:v2"; exit 1; }
      [[ $(ls "$copy") == $'env:v2\nsource.img' ]] || { echo "FAIL: h$k holds $(ls "$copy")"; exit 1; }
    done
    echo "ok: $nodes nodes hold source.img and env:v2 in /mnt/imgcast-node/job"
    ;;
  spank_bad_spec)
    # A bad --imgcast is refused before any step starts, with one clear line, and runs nothing.
    bad=("$work/source.img:job|'job' is not an absolute path"
         "$work/source.img:$work:/mnt/imgcast-node/x,cache=yes|cache=yes takes one image file"
         "$work/source\\q.img:/mnt/imgcast-node/x|a backslash escapes only"
         "$work/source.img|expected SRC\[:SRC...\]:DST")
    for item in "${bad[@]}"; do
      spec=${item%%|*} why=${item#*|}
      if timeout 60 "${on_ctl[@]}" srun -N "$nodes" --imgcast="$spec" sh -c 'echo TASK-RAN' \
           > out.txt 2> err.txt; then
        echo "FAIL: srun --imgcast=$spec succeeded"; cat out.txt err.txt; exit 1
      fi
      cat err.txt
      ! grep -q TASK-RAN out.txt
      grep "imgcast: --imgcast" err.txt | grep -q -- "$why" || { echo "FAIL: no '$why'"; exit 1; }
    done
    for ((k = 0; k < nodes; k++)); do [[ ! -e $node_root/h$k/x ]]; done
    echo "ok: every bad spec was refused with its reason"
    ;;
  spank_failure)
    # A missing source fails the step (non-zero srun), names the source, runs no task, and the
    # other nodes hear of it at once (no timeout wait).
    start=$(date +%s)
    if timeout 60 "${on_ctl[@]}" srun -N "$nodes" --imgcast="$work/missing.img:/mnt/imgcast-node/x.img" \
         sh -c 'echo TASK-RAN' > out.txt 2> err.txt; then
      echo "FAIL: srun succeeded"; cat out.txt err.txt; exit 1
    fi
    cat err.txt
    grep -q "source $work/missing.img does not exist" err.txt
    grep -q "node 0 failed before the transfer" err.txt
    ! grep -q TASK-RAN out.txt
    (( $(date +%s) - start < 30 ))
    for ((k = 0; k < nodes; k++)); do [[ ! -e $node_root/h$k/x.img ]]; done
    echo "ok: the step failed cleanly"
    ;;
  mpirun_hook)
    command -v mpirun >/dev/null || { echo "SKIP: openmpi-bin is not installed"; exit 77; }
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    # One process per node, started through the nodes' namespaces by mpirun's rsh agent.
    timeout 120 "${on_ctl[@]}" mpirun --mca plm_rsh_agent "$cluster rsh" \
      --mca oob_tcp_if_include $subnet --mca btl self,tcp \
      --host "$all_hosts" --map-by ppr:1:node -np "$nodes" \
      "$imgcast" hook "$work/source.img" /mnt/imgcast-node/mpi.img --rendezvous "$work" \
      -- sh -c 'echo "rank $OMPI_COMM_WORLD_RANK $(md5sum < "$IMGCAST_PATH")"' > out.txt
    cat out.txt
    grep -q "total: $nodes/$nodes nodes verified" out.txt
    [[ $(grep -c "rank .* $want" out.txt) == "$nodes" ]]
    verify mpi.img "$nodes"
    ;;
  mpirun_replicate)
    # `imgcast replicate --launcher mpirun` on h0: the agents start as one mpirun job on the
    # other nodes, the secret in its environment (-x), never in argv.
    command -v mpirun >/dev/null || { echo "SKIP: openmpi-bin is not installed"; exit 77; }
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    OMPI_MCA_plm_rsh_agent="$cluster rsh" OMPI_MCA_oob_tcp_if_include=$subnet \
      timeout 120 "$cluster" exec h0 "$imgcast" replicate "$work/source.img" \
      /mnt/imgcast-node/mpirep.img --hosts "$all_hosts" \
      --launcher mpirun > out.txt
    cat out.txt
    grep -q "total: $nodes/$nodes nodes verified" out.txt
    verify mpirep.img "$nodes"
    ;;
  pmix_replicate)
    # `imgcast replicate` with NO --hosts, started once per node by mpirun: each process is a
    # client of the PMIx server in mpirun's orted. Rank 0 (h0) finds the job's nodes in
    # PMIX_NODE_LIST and sends to them (agents by --rsh); ranks 1..3 return at once.
    command -v mpirun >/dev/null || { echo "SKIP: openmpi-bin is not installed"; exit 77; }
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    timeout 120 "${on_ctl[@]}" mpirun --mca plm_rsh_agent "$cluster rsh" \
      --mca oob_tcp_if_include $subnet --host "$all_hosts" --map-by ppr:1:node -np "$nodes" \
      "$imgcast" -v replicate "$work/source.img" /mnt/imgcast-node/pmix.img --rsh "$cluster rsh" \
      > out.txt 2> err.txt || { cat out.txt err.txt; exit 1; }
    cat out.txt err.txt
    grep -q "hosts from PMIx PMIX_NODE_LIST (pmix job .*): $nodes hosts" err.txt
    [[ $(grep -c "total: $nodes/$nodes nodes verified" out.txt) == 1 ]]
    [[ $(grep -c "rank 0 replicates for the job" err.txt) == $((nodes - 1)) ]]
    verify pmix.img "$nodes"
    ;;
  pmix_srun_replicate)
    # The same under Slurm's own PMIx server (srun --mpi=pmix, mpi/pmix_v4), with Slurm's
    # variables removed so that PMIx, not SLURM_JOB_NODELIST, names the hosts.
    timeout 120 "${on_ctl[@]}" srun --mpi=pmix -N "$nodes" --ntasks-per-node=1 \
      env -u SLURM_JOB_ID "$imgcast" -v replicate "$work/source.img" /mnt/imgcast-node/spmix.img \
      --rsh "$cluster rsh" > out.txt 2> err.txt || { cat out.txt err.txt; exit 1; }
    cat out.txt err.txt
    grep -q "hosts from PMIx PMIX_NODE_LIST (pmix job slurm.pmix.*): $nodes hosts" err.txt
    [[ $(grep -c "total: $nodes/$nodes nodes verified" out.txt) == 1 ]]
    [[ $(grep -c "rank 0 replicates for the job" err.txt) == $((nodes - 1)) ]]
    verify spmix.img "$nodes"
    ;;
  pmix_srun_hook)
    # The hook under a PMIx launcher, no --nodes: Slurm's PMIx server (srun --mpi=pmix), with
    # SLURM_NODEID removed so that PMIx, not Slurm, says who is who. Two tasks per node, one
    # transfer per node; the node index is the host's place in PMIX_NODE_LIST.
    timeout 120 "${on_ctl[@]}" srun --mpi=pmix -N "$nodes" --ntasks-per-node=2 \
      env -u SLURM_NODEID "$imgcast" hook "$work/source.img" /mnt/imgcast-node/phook.img \
      --rendezvous "$work" -- sh -c 'echo "$PMIX_RANK $(md5sum < "$IMGCAST_PATH")"' \
      > out.txt 2> err.txt || { cat out.txt err.txt; exit 1; }
    cat out.txt err.txt
    grep -q "total: $nodes/$nodes nodes verified" out.txt
    [[ $(grep -c " $want" out.txt) == $((2 * nodes)) ]]
    verify phook.img "$nodes"
    ;;
  *) echo "unknown case $case_name"; exit 2 ;;
esac
