#!/usr/bin/env bash
# The Debian package on a fresh Debian 12: debootstrap a minimal bookworm into a scratch
# directory, install the .deb there with apt-get (which must find every Depends in Debian's own
# archive), and run `imgcast demo` inside it. Needs root and Debian's package mirror; without
# the mirror it skips (77) and says so.
#   chroot_test.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: chroot_test.sh BUILD_DIR}
mirror=${IMGCAST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d /var/tmp/imgcast-chroot.XXXXXX)
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT

command -v debootstrap >/dev/null || { echo "SKIP: debootstrap missing (apt-get install debootstrap)"; exit 77; }
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (debootstrap, chroot)"; exit 77; }
if ! timeout 20 curl -fsI "$mirror/dists/bookworm/Release" >/dev/null 2>&1; then
  echo "SKIP: Debian's mirror $mirror is not reachable (set IMGCAST_DEBIAN_MIRROR)"; exit 77
fi

(cd "$root" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$root/out" > "$root/cpack.log" 2>&1) ||
  { cat "$root/cpack.log"; exit 1; }
deb=$(ls "$root"/out/imgcast_*.deb)

timeout 600 debootstrap --variant=minbase bookworm "$root/fs" "$mirror" > "$root/debootstrap.log" 2>&1 ||
  { tail -20 "$root/debootstrap.log"; exit 1; }
cp "$deb" "$root/fs/tmp/imgcast.deb"
cp /etc/resolv.conf "$root/fs/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$root/fs/proc"
chroot "$root/fs" sh -c '
  set -e
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends /tmp/imgcast.deb > /tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }
  imgcast --version
  imgcast demo --nodes 3 --size 8M > /tmp/demo.log
  cat /tmp/demo.log
  grep -q "3/3 copies identical" /tmp/demo.log
  test -f /usr/share/man/man1/imgcast.1*
'
umount "$root/proc" 2>/dev/null || true
umount "$root/fs/proc"
echo "ok: installed on a fresh Debian 12 (debootstrap) and ran the demo"
