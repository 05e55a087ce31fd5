#!/bin/sh
# Builds the imgcast(1) man page from the program's own --help (help2man), with every
# subcommand's --help in a SUBCOMMANDS section and the exit codes and files in their own
# sections, so the page never drifts from the binary.
#   make-man.sh IMGCAST OUTPUT
set -eu
imgcast=$1
output=$2
include=$(mktemp)
trap 'rm -f "$include"' EXIT
{
  echo "[SUBCOMMANDS]"
  for sub in replicate hook demo agent cache "cache list" "cache rm" "cache prune" "cache pin" "cache unpin"; do
    echo ".SS \"imgcast $sub\""
    echo ".nf"
    # Escape backslashes and leading dots for troff.
    # shellcheck disable=SC2086  # "cache list": the subcommand, then its own subcommand
    "$imgcast" $sub --help | sed -e 's/\\/\\\\/g' -e 's/^\./\\\&./'
    echo ".fi"
  done
  cat <<'SECTIONS'
[EXIT STATUS]
.TP
0
success: every node holds a verified copy
.TP
1
usage or bad input (nothing was written)
.TP
2
the transfer failed
.TP
3
partial: some nodes failed (named on standard error)
.TP
4
refused for security reasons
[FILES]
.TP
.I .NAME.imgcast-JOB.tmp
the copy being built, beside DST; removed on failure
.TP
.I user.imgcast.cache \fR(xattr)\fP, \fI.NAME.imgcast-cache
the node-local cache record of a placed copy
.TP
.I /tmp/imgcast-cache-UID \fR($IMGCAST_CACHE_DIR)\fP
the node's image cache that outlives a job (imgcast cache list, rm, prune, pin, unpin)
.TP
.I .NAME.imgcast-lock\fR, \fP.NAME.imgcast-state
imgcast hook's once-per-node lock and state, beside DST
.TP
.I .imgcast-rendezvous-*
imgcast hook's rendezvous file (mode 0600) in the shared directory
[SEE ALSO]
.BR srun (1),
.BR sbatch (1),
.BR mpirun (1),
.BR spank (8);
the documentation in /usr/share/doc/imgcast.
SECTIONS
} > "$include"
help2man --no-info --section=1 \
  --name="stage a container image onto every node of an HPC job, reading it once" \
  --include="$include" --output="$output" "$imgcast"
