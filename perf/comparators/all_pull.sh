#!/usr/bin/env bash
# The seed problem as a comparator: every host pulls the image from one storage host at once.
# nginx (sendfile on, one worker per core) serves the "PFS" directory from h0 of a running
# perf/cluster; every other host fetches it with curl into its node-local directory, all in
# parallel, and h0 copies it locally. Prints the wall seconds; every copy is compared with cmp.
#
#   perf/comparators/all_pull.sh IMAGE N        (the cluster must be up with N hosts)
set -euo pipefail
image=${1:?usage: all_pull.sh IMAGE N}
n=${2:?usage: all_pull.sh IMAGE N}
here=$(cd "$(dirname "$0")/../.." && pwd)
cluster=$here/perf/cluster
net=10.77.${IMGCAST_CLUSTER:-0}
command -v nginx >/dev/null || { echo "all_pull: nginx missing: apt-get install nginx-light" >&2; exit 1; }

conf=$(mktemp -d)
cleanup() { [[ -f $conf/nginx.pid ]] && kill "$(cat "$conf/nginx.pid")" 2>/dev/null; rm -rf "$conf"; }
trap cleanup EXIT INT TERM
cat > "$conf/nginx.conf" <<CONF
worker_processes 2;
pid $conf/nginx.pid;
error_log $conf/error.log;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  server {
    listen $net.1:8080;
    root $(dirname "$image");
  }
}
CONF
"$cluster" exec h0 nginx -c "$conf/nginx.conf"
for _ in $(seq 50); do [[ -s $conf/nginx.pid ]] && break; sleep 0.05; done

name=$(basename "$image")
start=$(date +%s.%N)
pids=()
"$cluster" exec h0 cp "$image" /mnt/imgcast-node/"$name" & pids+=($!)
for ((h = 1; h < n; h++)); do
  "$cluster" exec "h$h" curl -sf -o /mnt/imgcast-node/"$name" "http://$net.1:8080/$name" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
end=$(date +%s.%N)
for ((h = 0; h < n; h++)); do
  cmp -s "$image" "$("$cluster" node-root)/h$h/$name" || failed=$((failed + 1))
done
((failed == 0)) || { echo "all_pull: $failed hosts did not get a verified copy" >&2; exit 2; }
python3 -c "print(round($end - $start, 3))"
