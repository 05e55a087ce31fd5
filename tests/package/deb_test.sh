#!/usr/bin/env bash
# The Debian package: cpack builds it from this build tree; its control file declares the
# runtime libraries (dpkg-shlibdeps) and apt can resolve them; it holds the binary, the SPANK
# plugin, the man page and the docs; and, unpacked into an empty prefix (no install into this
# machine), its imgcast runs the demo.
#   deb_test.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: deb_test.sh BUILD_DIR}
work=$(mktemp -d /tmp/imgcast-deb-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

command -v cpack >/dev/null || { echo "SKIP: cpack missing"; exit 77; }
command -v dpkg-shlibdeps >/dev/null || { echo "SKIP: dpkg-dev missing (apt-get install dpkg-dev)"; exit 77; }

(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" > cpack.log 2>&1) ||
  { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/out/imgcast_*.deb)
echo "package: $(basename "$deb")"

depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for lib in libc6 libssl3 libxxhash0 libfmt9; do
  grep -q "$lib" <<<"$depends" || { echo "FAIL: Depends lacks $lib"; exit 1; }
done
# Every dependency resolves on this Debian (simulation: nothing is installed).
apt-get install -s "$deb" > "$work/apt.log" 2>&1 || { cat "$work/apt.log"; exit 1; }
grep -q "^Inst imgcast" "$work/apt.log" || { cat "$work/apt.log"; exit 1; }

contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for file in ./usr/bin/imgcast ./usr/share/man/man1/imgcast.1 ./usr/share/doc/imgcast/usage.md; do
  grep -qx "$file" <<<"$contents" || { echo "FAIL: the package lacks $file"; exit 1; }
done
if [[ -e $build/cli/imgcast_spank.so ]]; then
  grep -q "slurm-wlm/imgcast_spank.so$" <<<"$contents" || { echo "FAIL: no SPANK plugin"; exit 1; }
fi

# Unpacked into an empty prefix, the packaged binary runs the demo.
dpkg-deb -x "$deb" "$work/root"
"$work/root/usr/bin/imgcast" --version
mkdir "$work/demo" && "$work/root/usr/bin/imgcast" demo --nodes 3 --size 8M --dir "$work/demo" | tee "$work/demo.log"
grep -q "3/3 copies identical" "$work/demo.log"
man -l "$work/root/usr/share/man/man1/imgcast.1" 2>/dev/null | grep -q "imgcast hook" ||
  { echo "FAIL: the man page lacks the hook subcommand"; exit 1; }
echo "ok: the package builds, resolves, and its imgcast runs the demo"
