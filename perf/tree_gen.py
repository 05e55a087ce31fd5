#!/usr/bin/env python3
"""Generates a deterministic environment-like tree for perf/tree_bench.sh: the layout of a conda
env or venv (bin/, lib/ with a few MiB-sized shared objects and their version symlinks,
lib/python3.11/site-packages/ with nested packages, __pycache__ and dist-info dirs, include/,
share/, conda-meta/), FILES regular files in all, mostly 0-12 KiB, relative symlinks (one
dangling), a couple of hardlinks, a few empty directories. Same FILES and SEED, same tree (names,
sizes, bytes, modes, mtimes).

    perf/tree_gen.py DIR FILES [SEED]      DIR must not exist; prints a JSON summary
"""
import json
import os
import random
import sys

MTIME = 1_700_000_000  # every entry's mtime (plus a per-file offset): deterministic


def main(argv):
    top, files_wanted = argv[1], int(argv[2])
    rng = random.Random(int(argv[3]) if len(argv) > 3 else 22)
    os.makedirs(top)
    stats = {"files": 0, "bytes": 0, "dirs": 1, "symlinks": 0, "hardlinks": 0}
    made_dirs = set()

    def mkdir(rel):
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub not in made_dirs:
                os.mkdir(os.path.join(top, sub))
                made_dirs.add(sub)
                stats["dirs"] += 1

    def small_size():
        r = rng.random()
        if r < 0.06:
            return 0                                  # empty __init__.py, markers
        return min(12288, int(rng.expovariate(1 / 3200)) + 1)

    def write(rel, size, mode=0o644):
        path = os.path.join(top, rel)
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
        os.chmod(path, mode)
        os.utime(path, (MTIME, MTIME + stats["files"]))
        stats["files"] += 1
        stats["bytes"] += size

    def symlink(target, rel):
        os.symlink(target, os.path.join(top, rel))
        stats["symlinks"] += 1

    # lib/: the MiB-sized shared objects (~21 MiB), with their soname symlinks.
    mkdir("lib")
    for name, mib in [("libpython3.11.so.1.0", 6), ("libcrypto.so.3", 4), ("libstdc++.so.6.0.32", 3),
                      ("libopenblas.so.0.3.21", 5), ("libssl.so.3", 1), ("libgfortran.so.5.0.0", 2)]:
        write(f"lib/{name}", mib << 20, 0o755)
    for link, target in [("libpython3.11.so", "libpython3.11.so.1.0"), ("libstdc++.so.6", "libstdc++.so.6.0.32"),
                         ("libstdc++.so", "libstdc++.so.6"), ("libopenblas.so.0", "libopenblas.so.0.3.21"),
                         ("libopenblas.so", "libopenblas.so.0"), ("libssl.so", "libssl.so.3"),
                         ("libcrypto.so", "libcrypto.so.3"), ("libgfortran.so.5", "libgfortran.so.5.0.0"),
                         ("libgfortran.so", "libgfortran.so.5")]:
        symlink(target, f"lib/{link}")
    for i in range(40):                                 # small libs: libz.so.1.2.13 and friends
        name = f"libx{i:02d}.so.1.{i % 7}.0"
        write(f"lib/{name}", rng.randint(20_000, 300_000), 0o755)
        symlink(name, f"lib/libx{i:02d}.so.1")
        symlink(f"libx{i:02d}.so.1", f"lib/libx{i:02d}.so")
    mkdir("lib/pkgconfig")
    for i in range(30):
        write(f"lib/pkgconfig/x{i:02d}.pc", small_size())

    # bin/: interpreters, entry-point scripts, the usual python -> python3.11 links.
    mkdir("bin")
    write("bin/python3.11", 16_000, 0o755)
    for link in ("python", "python3"):
        symlink("python3.11", f"bin/{link}")
    for i in range(120):
        write(f"bin/tool{i:03d}", small_size(), 0o755)
    symlink("../lib/python3.11/site-packages/pkg000/__main__.py", "bin/pkg000-main")
    symlink("tool-that-was-removed", "bin/dangling")     # a dangling relative link

    # include/, share/, conda-meta/: headers, docs, locales, package records.
    for i in range(300):
        d = f"include/h{i % 12:02d}"
        mkdir(d)
        write(f"{d}/header{i:03d}.h", small_size())
    for i in range(400):
        d = f"share/locale/l{i % 40:02d}/LC_MESSAGES"
        mkdir(d)
        write(f"{d}/domain{i // 40:02d}.mo", small_size())
    mkdir("share/man/man1")
    for i in range(150):
        write(f"share/man/man1/tool{i:03d}.1", small_size())
    mkdir("conda-meta")
    for i in range(100):
        write(f"conda-meta/pkg{i:03d}-1.0-0.json", small_size())
    for d in ("share/empty", "etc/conda/activate.d", "var/cache"):  # empty directories
        mkdir(d)

    # lib/python3.11/site-packages/: packages of nested subpackages until FILES is reached.
    site = "lib/python3.11/site-packages"
    mkdir(site)
    p = 0
    while stats["files"] < files_wanted:
        pkg = f"{site}/pkg{p:03d}"
        depth = rng.randint(1, 4)
        modules = rng.randint(8, 60)
        dirs = [pkg]
        for _ in range(rng.randint(0, 8)):
            parent = rng.choice(dirs)
            if parent.count("/") - pkg.count("/") < depth:
                dirs.append(f"{parent}/sub{len(dirs):02d}")
        for d in dirs:
            mkdir(d)
            mkdir(f"{d}/__pycache__")
            write(f"{d}/__init__.py", small_size())
            for m in range(max(1, modules // len(dirs))):
                if stats["files"] >= files_wanted:
                    break
                size = small_size()
                write(f"{d}/mod{m:02d}.py", size)
                write(f"{d}/__pycache__/mod{m:02d}.cpython-311.pyc", min(12288, size + 200))
        if p == 0:
            write(f"{pkg}/__main__.py", small_size())
        info = f"{site}/pkg{p:03d}-1.{p % 10}.0.dist-info"
        mkdir(info)
        for name in ("METADATA", "RECORD", "WHEEL", "INSTALLER", "top_level.txt", "LICENSE"):
            write(f"{info}/{name}", small_size())
        p += 1

    # Hardlinks within the tree: a MiB-sized one (numpy's bundled openblas, as conda links it) and
    # a small one; each must be read once and stay a hardlink.
    mkdir(f"{site}/pkg000/.libs")
    os.link(os.path.join(top, "lib/libopenblas.so.0.3.21"), os.path.join(top, f"{site}/pkg000/.libs/libopenblas.so"))
    os.link(os.path.join(top, "bin/python3.11"), os.path.join(top, "bin/python3.11-hardlink"))
    stats["hardlinks"] = 2

    # Directory mtimes last (writing into a directory changes its mtime).
    for d in made_dirs:
        os.utime(os.path.join(top, d), (MTIME, MTIME), follow_symlinks=False)
    os.utime(top, (MTIME, MTIME))
    stats["entries"] = stats["files"] + stats["dirs"] + stats["symlinks"] + stats["hardlinks"]
    print(json.dumps(stats))


if __name__ == "__main__":
    main(sys.argv)
