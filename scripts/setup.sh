#!/usr/bin/env bash
# Installs every Debian package imgcast needs to build, test, benchmark and run its demo.
# Idempotent; run as root on Debian 12. Skips apt entirely when everything is already present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev
  libspdlog-dev libfmt-dev libcli11-dev libxxhash-dev libnuma-dev nlohmann-json3-dev
  libucx-dev ucx-utils libibverbs-dev librdmacm-dev rdma-core ibverbs-utils
  iperf3 netcat-openbsd squashfs-tools procps iproute2 util-linux e2fsprogs nginx-light curl time rsync
  slurmctld slurmd slurm-client munge libslurm-dev openmpi-bin help2man dpkg-dev debootstrap
  libopenmpi-dev libpmix-dev gnuplot-nox clang-14 libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages (${missing[*]}); run this script as root" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all packages present"
