#!/usr/bin/env python3
"""perf/cache_bench.sh's helper: the job sequence, page-cache drops, cache snapshots, pins held
while a job "runs", one JSON line per job and the summary.

    cache_bench.py seq SEED JOBS IMAGES BURST ZIPF_S    the sequence, one image index a line on
                                                      stdout, a description on stderr
    cache_bench.py drop FILE...                       drop FILEs' clean pages (fadvise DONTNEED)
    cache_bench.py entries DIR...                     {"DIR": {"DIGEST": inode, ...}, ...} of
                                                      each DIR/entries (records left out)
    cache_bench.py pin READY DIGEST DIR...            a job's pin on DIR/entries/DIGEST of every
                                                      DIR, taken as imgcast takes one (a shared
                                                      flock() on the entry, under an exclusive
                                                      flock() of DIR/lock); writes READY
                                                      ({"DIR": inode}) and holds them until SIGTERM
    cache_bench.py lost READY DIGEST                  how many of those pins' entries are gone
    cache_bench.py record OUT key=value... [--report REPORT.json] [--before B.json --after A.json]
    cache_bench.py summary OUT RUN_ID
"""
import fcntl
import json
import math
import os
import random
import signal
import statistics
import sys


def sequence(seed, jobs, images, burst, zipf_s):
    """A Zipf-like popularity over the images (image k, 0-based, has weight 1/(k+1)^s) with
    bursts: with probability BURST a job reruns the previous job's image (a user resubmitting, a
    job array). Deterministic from SEED. Which image is most popular is a seeded permutation."""
    rng = random.Random(seed)
    rank = list(range(images))
    rng.shuffle(rank)  # rank[k]: the image of popularity rank k
    weights = [1 / (k + 1) ** zipf_s for k in range(images)]
    seq = []
    for j in range(jobs):
        if seq and rng.random() < burst:
            seq.append(seq[-1])
        else:
            seq.append(rank[rng.choices(range(images), weights)[0]])
    return seq, rank, weights


def cmd_seq(argv):
    seed, jobs, images = int(argv[0]), int(argv[1]), int(argv[2])
    burst, zipf_s = float(argv[3]), float(argv[4])
    seq, rank, weights = sequence(seed, jobs, images, burst, zipf_s)
    total = sum(weights)
    counts = {i: seq.count(i) for i in range(images)}
    print(f"   job sequence (seed {seed}, Zipf s={zipf_s} over {images} images, burst "
          f"p={burst}): {' '.join(f'img{i}' for i in seq)}", file=sys.stderr)
    print("   popularity: " + ", ".join(
        f"img{rank[k]} {weights[k] / total:.0%} (ran {counts[rank[k]]})" for k in range(images)),
        file=sys.stderr)
    print("\n".join(str(i) for i in seq))


def cmd_drop(argv):
    for path in argv:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def entries(d):
    out = {}
    try:
        names = os.listdir(os.path.join(d, "entries"))
    except FileNotFoundError:
        return out
    for name in names:
        if name.endswith(".json"):
            continue
        try:
            ino = os.stat(os.path.join(d, "entries", name)).st_ino
        except FileNotFoundError:
            continue
        try:
            last = json.load(open(os.path.join(d, "entries", name + ".json")))["last_used_ns"]
        except (OSError, ValueError, KeyError):
            last = None
        out[name] = [ino, last]
    return out


def cmd_entries(argv):
    print(json.dumps({d: entries(d) for d in argv}))


def cmd_pin(argv):
    ready, digest, dirs = argv[0], argv[1], argv[2:]
    held, inodes = [], {}
    for d in dirs:
        lock = os.open(os.path.join(d, "lock"), os.O_RDWR)
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            fd = os.open(os.path.join(d, "entries", digest), os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            held.append(fd)
            inodes[d] = os.fstat(fd).st_ino
        except OSError as error:
            inodes[d] = None
            print(f"cache_bench: cannot pin {digest} in {d}: {error}", file=sys.stderr)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            os.close(lock)
    with open(ready + ".tmp", "w") as f:
        json.dump(inodes, f)
    os.rename(ready + ".tmp", ready)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


def cmd_lost(argv):
    """How many of a pin file's pinned entries are no longer their host's entry (same inode)."""
    held, digest, lost = json.load(open(argv[0])), argv[1], 0
    for d, ino in held.items():
        try:
            lost += ino is None or os.stat(os.path.join(d, "entries", digest)).st_ino != ino
        except FileNotFoundError:
            lost += 1
    print(lost)


def parse_value(v):
    try:
        return json.loads(v)
    except ValueError:
        return v


def cmd_record(argv):
    out, row, opts = argv[0], {}, {}
    i = 1
    while i < len(argv):
        if argv[i].startswith("--"):
            opts[argv[i][2:]] = argv[i + 1]
            i += 2
            continue
        k, _, v = argv[i].partition("=")
        row[k] = parse_value(v)
        i += 1
    report = None
    if opts.get("report"):
        try:
            report = json.load(open(opts["report"]))
        except (OSError, ValueError):
            report = None
    if report:
        nodes = report.get("nodes", [])
        row["setup_seconds"] = report.get("setup_seconds")
        row["transfer_seconds"] = report.get("transfer_seconds")
        row["digest"] = report.get("digest_xxh3_128")
        row["cached"] = sum(1 for n in nodes if n.get("cached"))
        row["verified_nodes"] = sum(1 for n in nodes if n.get("verified"))
        row["failures"] = [f"{n.get('host')}: {n.get('failure')}" for n in nodes
                           if not n.get("verified")]
        row["exit_code"] = report.get("totals", {}).get("exit_code", row.get("exit_code"))
    else:
        row.setdefault("cached", 0)
        row.setdefault("verified_nodes", 0)
    hosts = row.get("nodes", 0)
    row["outcome"] = ("hit" if hosts and row["cached"] == hosts else
                      "miss" if row["cached"] == 0 else "partial")
    if opts.get("before") and opts.get("after"):
        before, after = json.load(open(opts["before"])), json.load(open(opts["after"]))
        # An eviction: an entry a host had before the job and not after (or a new inode).
        pinned = set(opts.get("pinned", "").split())
        row["evictions"] = 0
        row["lru_in_use_skipped"] = 0
        for d, es in before.items():
            gone = [dg for dg, (ino, _) in es.items() if (after.get(d, {}).get(dg) or [None])[0] != ino]
            row["evictions"] += len(gone)
            # Plain LRU would have taken the least recently used entry first: when that one was
            # in use (pinned by a running job), the cache had to pass over it.
            aged = [dg for dg, (_, last) in es.items() if last is not None]
            if gone and aged and min(aged, key=lambda dg: es[dg][1]) in pinned:
                row["lru_in_use_skipped"] += 1
        row["entries_after"] = sum(len(es) for es in after.values())
    row["failed"] = not (row.get("exit_code") == 0 and row["verified_nodes"] == hosts and
                         row.get("dst_ok", True))
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))


def pct(values, p):
    """Nearest-rank percentile: the smallest value with at least p % of the values at or below."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def cmd_summary(argv):
    out, run_id = argv[0], argv[1]
    rows = [json.loads(l) for l in open(out) if l.strip()]
    rows = [r for r in rows if r.get("run_id") == run_id]
    if not rows:
        print("cache_bench: no rows")
        return
    r0 = rows[0]
    mib = 1 << 20
    print(f"\n{r0['nodes']} hosts, {r0['rate_mbit']} Mbit/s, {r0['images']} images × "
          f"{r0['size_mib']} MiB, cache budget {r0['budget']}, {r0['jobs']} jobs × "
          f"{r0['reps']} rep(s), seed {r0['seed']}, {r0['overlap']} earlier job(s) still "
          f"running (pinned) while a job stages, job {r0.get('long_job')} running (pinned) to the end, destinations on {r0['dest_fs']}\n")
    print("| mode | jobs | failed | hit rate (partial) | source MiB read per job: mean (total) "
          "| staging s hits p50 / p95 | staging s misses p50 / p95 | all jobs' staging s "
          "| evictions (LRU entry in use, passed over) | evicted in use |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode in ("cache", "nocache"):
        rs = [r for r in rows if r["mode"] == mode]
        if not rs:
            continue
        ok = [r for r in rs if not r["failed"]]
        hits = [r["seconds"] for r in ok if r["outcome"] == "hit"]
        misses = [r["seconds"] for r in ok if r["outcome"] == "miss"]
        partial = sum(1 for r in rs if r["outcome"] == "partial")
        read = [r["source_bytes_read"] for r in rs]
        ev = sum(r.get("evictions", 0) for r in rs)
        skipped = sum(r.get("lru_in_use_skipped", 0) for r in rs)
        in_use = sum(r.get("evicted_in_use", 0) for r in rs)
        hit_rate = f"{len(hits) / len(rs):.0%} ({partial})"
        print(f"| {mode} | {len(rs)} | {len(rs) - len(ok)} | {hit_rate} | "
              f"{statistics.mean(read) / mib:.1f} ({sum(read) / mib:.0f}) | "
              f"{fmt(pct(hits, 50))} / {fmt(pct(hits, 95))} ({len(hits)}) | "
              f"{fmt(pct(misses, 50))} / {fmt(pct(misses, 95))} ({len(misses)}) | "
              f"{sum(r['seconds'] for r in rs if r['seconds'] is not None):.1f} | "
              f"{f'{ev} ({skipped})' if mode == 'cache' else '-'} | {in_use if mode == 'cache' else '-'} |")
    hit_rows = [r for r in rows if r["mode"] == "cache" and r["outcome"] == "hit" and not r["failed"]]
    if hit_rows:
        print(f"\nhits, imgcast's own view: setup p50 "
              f"{fmt(pct([r['setup_seconds'] for r in hit_rows if r.get('setup_seconds') is not None], 50), '.3f')} s, "
              f"transfer p50 "
              f"{fmt(pct([r['transfer_seconds'] for r in hit_rows if r.get('transfer_seconds') is not None], 50), '.3f')} s; "
              f"entering h0 (perf/cluster exec h0 true) {r0.get('exec_overhead_seconds')} s of each "
              f"whole command. Goal: a hit ≤ 0.2 s at 8 hosts: p95 "
              f"{fmt(pct([r['seconds'] for r in hit_rows], 95))} s")
    failed = [r for r in rows if r["failed"]]
    for r in failed[:10]:
        print(f"FAILED: {r['mode']} job {r['job']} rep {r['rep']} img{r['image']}: exit "
              f"{r.get('exit_code')}, {r.get('failures') or ''} dst_ok={r.get('dst_ok')}")


def main(argv):
    commands = {"seq": cmd_seq, "drop": cmd_drop, "entries": cmd_entries, "pin": cmd_pin, "lost": cmd_lost,
                "record": cmd_record, "summary": cmd_summary}
    if len(argv) < 2 or argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 1
    commands[argv[1]](argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
