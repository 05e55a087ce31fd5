#!/usr/bin/env bash
# `imgcast replicate` with no --hosts under a real PMIx server on this machine: Open MPI 4.1's
# mpirun (its orted embeds the PMIx 4.2 server from libpmix2). One machine is a one-node job,
# so this checks detection, the rank rule and the failure paths; tests/launchers runs the same
# across four hosts. `allocated` runs it under pmix_test_server (libpmix's server API), which
# gives PMIX_ALLOCATED_NODELIST, to three loopback "hosts". Exit 77 (CTest: skipped) without
# mpirun or without PMIx in this build.
#
#   pmix_loopback_test.sh CASE IMGCAST [PMIX_TEST_SERVER]
set -euo pipefail

case_name=${1:?usage: pmix_loopback_test.sh CASE IMGCAST}
imgcast=${2:?usage: pmix_loopback_test.sh CASE IMGCAST}
server=${3:-}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Not this test's business: whatever launcher the suite itself runs under.
unset SLURM_JOB_ID SLURM_JOB_NODELIST SLURM_NODELIST PBS_NODEFILE LSB_DJOB_HOSTFILE LSB_MCPU_HOSTS

work=$(mktemp -d /tmp/imgcast-pmix-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
head -c $((3 * 1024 * 1024 + 777)) /dev/urandom > source.img

need_mpirun() { command -v mpirun >/dev/null || { echo "SKIP: openmpi-bin is not installed"; exit 77; }; }
# A build without libpmix says so when it meets a PMIx job.
pmix_built_in() {
  local said
  said=$(PMIX_NAMESPACE=x PMIX_SERVER_URI41=y "$imgcast" replicate source.img "$work/x.img" 2>&1 || true)
  ! grep -q "PMIx support not built in" <<<"$said"
}
need_pmix() { pmix_built_in || { echo "SKIP: this imgcast was built without PMIx"; exit 77; }; }

case $case_name in
  single)
    # mpirun -np 1: the job's node list is this machine alone (PMIX_NODE_LIST = its name).
    need_mpirun; need_pmix
    timeout 120 mpirun -np 1 "$imgcast" -v replicate source.img "$work/copy.img" > out.txt 2> err.txt ||
      { cat out.txt err.txt; exit 1; }
    cat out.txt err.txt
    grep -q "hosts from PMIx PMIX_NODE_LIST (pmix job " err.txt
    grep -q "warning: PMIx names only this node ($(hostname)): .*(mpirun --map-by ppr:1:node)" err.txt
    grep -q "total: 1/1 nodes verified" out.txt
    cmp source.img copy.img
    ;;
  ranks)
    # Started once per slot (-np 3 on one node): rank 0 replicates, ranks 1 and 2 return at
    # once and send nothing.
    need_mpirun; need_pmix
    timeout 120 mpirun -np 3 --oversubscribe "$imgcast" -v replicate source.img "$work/copy.img" \
      > out.txt 2> err.txt || { cat out.txt err.txt; exit 1; }
    cat out.txt err.txt
    [[ $(grep -c "total: 1/1 nodes verified" out.txt) == 1 ]]
    [[ $(grep -c "rank 0 replicates for the job" err.txt) == 2 ]]
    grep -q "rank 1 of 3 in pmix job" err.txt
    grep -q "rank 2 of 3 in pmix job" err.txt
    cmp source.img copy.img
    ;;
  dead_server)
    # The variables of a PMIx job whose server is gone: a one-line error, exit 1, no wait (a
    # build without PMIx: the one line says so).
    want="imgcast: error: PMIX_NAMESPACE is set but the PMIx server did not answer"
    pmix_built_in || want="imgcast: error: this is a PMIx job (PMIX_NAMESPACE is set) but PMIx support not built in"
    start=$(date +%s)
    status=0
    PMIX_NAMESPACE=gone.0 PMIX_RANK=0 PMIX_SERVER_URI41='pmix-server.1;tcp4://127.0.0.1:1' \
      timeout 60 "$imgcast" -v replicate source.img "$work/copy.img" > out.txt 2> err.txt || status=$?
    cat out.txt err.txt
    [[ $status == 1 ]] || { echo "FAIL: exit $status, want 1"; exit 1; }
    grep -q "$want" err.txt
    [[ $(wc -l < err.txt) == 1 ]]
    grep -q -- "--hosts" err.txt
    (( $(date +%s) - start < 30 ))
    [[ ! -e copy.img ]]
    ;;
  silent_server)
    # The variables point at a socket that accepts and never answers (some other service): the
    # PMIx handshake would wait forever; imgcast gives up after its 10 s deadline, exit 1.
    need_pmix
    perl -MIO::Socket::INET -e '
      my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 5,
                                    ReuseAddr => 1) or die "listen: $!";
      open(my $f, ">", "port") or die; print $f $s->sockport(), "\n"; close $f;
      my $c = $s->accept; sleep 60;' &
    listener=$!
    trap 'kill $listener 2>/dev/null; rm -rf "$work"' EXIT
    for ((t = 0; t < 50; t++)); do [[ -s port ]] && break; sleep 0.1; done
    start=$(date +%s)
    status=0
    PMIX_NAMESPACE=silent.0 PMIX_RANK=0 PMIX_SERVER_URI41="pmix-server.1;tcp4://127.0.0.1:$(cat port)" \
      timeout 60 "$imgcast" replicate source.img "$work/copy.img" > out.txt 2> err.txt || status=$?
    cat out.txt err.txt
    [[ $status == 1 ]] || { echo "FAIL: exit $status, want 1"; exit 1; }
    grep -q "the PMIx server did not answer (PMIx_Init: no answer in 10 s)" err.txt
    (( $(date +%s) - start < 30 ))
    ;;
  allocated)
    # An RM that gives the whole allocation: one process on 127.0.0.1, the allocation three
    # loopback hosts in the RM's order. This host goes first, the others keep their order, and
    # every one of them gets a verified copy (agents by --rsh local).
    need_pmix
    [[ -n $server ]] || { echo "SKIP: no pmix_test_server"; exit 77; }
    mkdir node0 node1 node2
    timeout 120 "$server" 127.0.0.1 127.0.0.3,127.0.0.1,127.0.0.2 -- "$imgcast" -v replicate \
      source.img "$work/node%r/copy.img" --rsh local > out.txt 2> err.txt ||
      { cat out.txt err.txt; exit 1; }
    cat out.txt err.txt
    grep -q "hosts from PMIx PMIX_ALLOCATED_NODELIST (pmix job imgcast-test.1): 3 hosts" err.txt
    grep -q "total: 3/3 nodes verified" out.txt
    grep -Eq "^ +0 +127\.0\.0\.1 .* verified" out.txt
    grep -Eq "^ +1 +127\.0\.0\.3 .* verified" out.txt
    grep -Eq "^ +2 +127\.0\.0\.2 .* verified" out.txt
    for k in 0 1 2; do cmp source.img "node$k/copy.img"; done
    ;;
  hook)
    # The hook started by a PMIx launcher with no --nodes: the node count and this node's index
    # come from the server's PMIX_NODE_LIST (one node here), the job id from PMIX_NAMESPACE.
    need_pmix
    [[ -n $server ]] || { echo "SKIP: no pmix_test_server"; exit 77; }
    mkdir rdv
    timeout 120 "$server" 127.0.0.1 - -- "$imgcast" -v hook source.img "$work/hook.img" \
      --rendezvous "$work/rdv" -- sh -c 'echo "staged $IMGCAST_PATH"' > out.txt 2> err.txt ||
      { cat out.txt err.txt; exit 1; }
    cat out.txt err.txt
    grep -q "total: 1/1 nodes verified" out.txt
    grep -q "staged $work/hook.img" out.txt
    cmp source.img hook.img
    ;;
  *) echo "unknown case $case_name"; exit 2 ;;
esac
echo "ok: $case_name"
