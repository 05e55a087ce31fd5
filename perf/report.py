#!/usr/bin/env python3
"""Summarises benchmark JSON lines (perf/emulated.sh) into CSV, Markdown and PNG plots.

    perf/report.py RESULTS.jsonl [MORE.jsonl ...]

Writes beside the first file: NAME.csv (every run), NAME.md (median and min-max per system and
setting, with reps counted only when every copy verified), NAME-time-vs-nodes.png (seconds vs N
per system, with the ideal S*8/RATE) and, when imgcast ran with several chunk sizes,
NAME-throughput-vs-chunk.png and an alpha-beta fit of the chain pipeline:
    T = (S/c + N - 2) * (alpha + c/beta)
(S image bytes, c chunk bytes, N nodes), least squares over imgcast's transfer seconds.
"""
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile


def load(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


def write_csv(rows, path):
    keys = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def group(rows):
    groups = {}
    for row in rows:
        key = (row["nodes"], row["size_mib"], row.get("rate_mbit"), row["system"],
               row.get("variant", ""))
        groups.setdefault(key, []).append(row)
    return groups


def summary(rows):
    lines = ["| nodes | MiB | Mbit/s | system | variant | runs ok | median s | min–max s | "
             "median ÷ ideal | median CPU % |", "|---|---|---|---|---|---|---|---|---|---|"]
    def order(item):
        nodes, size, rate, system, variant = item[0]
        return (nodes, size, rate or 0, system != "calibration", system, variant)

    for key, runs in sorted(group(rows).items(), key=order):
        ok = [r for r in runs if r.get("verified", True)]
        if not ok:
            lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4]} | 0/{len(runs)} "
                         f"| not verified | | | |")
            continue
        seconds = [r["seconds"] for r in ok]
        ratios = [r["seconds"] / r["ideal_seconds"] for r in ok if r.get("ideal_seconds")]
        cpu = [r["machine_cpu_percent"] for r in ok if "machine_cpu_percent" in r]
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4]} | {len(ok)}/{len(runs)} | "
            f"{statistics.median(seconds):.2f} | {min(seconds):.2f}–{max(seconds):.2f} | "
            f"{statistics.median(ratios):.3f} | "
            f"{statistics.median(cpu):.0f} |" if ratios and cpu else
            f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4]} | {len(ok)}/{len(runs)} | "
            f"{statistics.median(seconds):.2f} | {min(seconds):.2f}–{max(seconds):.2f} | - | - |")
    return lines


def alpha_beta(rows):
    """Least-squares fit of the chain pipeline model over imgcast runs on a chain."""
    points = []
    for r in rows:
        if (r["system"] == "imgcast" and r.get("verified", True) and r.get("chunk_bytes")
                and str(r.get("topology", "")).startswith("chain") and "transfer_seconds" in r):
            c = r["chunk_bytes"]
            m = r["size_mib"] * 1048576 / c + r["nodes"] - 2
            points.append((m, m * c, r["transfer_seconds"]))
    if len({round(p[1] / p[0]) for p in points}) < 2:
        return None, "alpha-beta fit: needs imgcast chain runs with two chunk sizes or more"
    sxx = sum(p[0] * p[0] for p in points)
    sxy = sum(p[0] * p[1] for p in points)
    syy = sum(p[1] * p[1] for p in points)
    sxt = sum(p[0] * p[2] for p in points)
    syt = sum(p[1] * p[2] for p in points)
    det = sxx * syy - sxy * sxy
    if det == 0:
        return None, "alpha-beta fit: singular"
    alpha = (syy * sxt - sxy * syt) / det
    inv_beta = (sxx * syt - sxy * sxt) / det
    beta = 1 / inv_beta if inv_beta > 0 else float("inf")
    text = (f"alpha-beta fit over {len(points)} chain runs: alpha = {alpha * 1e6:.1f} us per "
            f"chunk per hop, beta = {beta * 8 / 1e6:.1f} Mbit/s")
    return (alpha, beta), text


def gnuplot(script):
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True)
        return True
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"report: no plot ({error}); apt-get install gnuplot-nox", file=sys.stderr)
        return False


def data_file(tmp, stem, lines):
    """Writes gnuplot's data file `stem`.dat in `tmp`, one point a line; returns its path."""
    path = os.path.join(tmp, f"{stem}.dat")
    with open(path, "w") as f:
        for line in lines:
            f.write(f"{line}\n")
    return path


def plot_png(png, settings, plots):
    """Draws `plots` into `png`: both plots share the page, the grid and the plot line, and
    differ in title, axes and scales (`settings`, gnuplot lines)."""
    return gnuplot(f"""set terminal pngcairo size 1000,650 noenhanced
set output '{png}'
{settings}
set grid
plot {', '.join(plots)}
""")


def plot_time_vs_nodes(rows, png):
    ok = [r for r in rows if r.get("verified", True) and r["system"] != "calibration"]
    if not ok:
        return False
    size = max(r["size_mib"] for r in ok)
    rate = ok[0].get("rate_mbit")
    series = {}
    for r in ok:
        if r["size_mib"] == size:
            series.setdefault(f"{r['system']} {r.get('variant', '')}".strip(), {}).setdefault(
                r["nodes"], []).append(r["seconds"])
    ideal = {r["nodes"]: r["ideal_seconds"] for r in ok if r["size_mib"] == size}
    with tempfile.TemporaryDirectory() as tmp:
        plots = []
        for i, (name, by_n) in enumerate(sorted(series.items())):
            data = data_file(tmp, i, (
                f"{n} {statistics.median(by_n[n])} {min(by_n[n])} {max(by_n[n])}"
                for n in sorted(by_n)))
            plots.append(f"'{data}' using 1:2:3:4 with yerrorlines title '{name}'")
        data = data_file(tmp, "ideal", (f"{n} {ideal[n]}" for n in sorted(ideal)))
        plots.append(f"'{data}' using 1:2 with lines dashtype 2 lw 2 title 'ideal S*8/RATE'")
        return plot_png(png, f"""set title 'Time to place {size} MiB on every node, {rate} Mbit/s links (median, min-max)'
set xlabel 'nodes'; set ylabel 'seconds'; set logscale y; set key outside right""", plots)


def plot_throughput_vs_chunk(rows, png):
    runs = [r for r in rows if r["system"] == "imgcast" and r.get("verified", True)
            and r.get("chunk_bytes") and r.get("transfer_seconds")]
    if len({r["chunk_bytes"] for r in runs}) < 2:
        return False
    series = {}
    for r in runs:
        mbit = r["size_mib"] * 1048576 * 8 / r["transfer_seconds"] / 1e6
        series.setdefault(f"{r['nodes']} nodes {r.get('topology', '')}", {}).setdefault(
            r["chunk_bytes"] // 1024, []).append(mbit)
    with tempfile.TemporaryDirectory() as tmp:
        plots = []
        for i, (name, by_chunk) in enumerate(sorted(series.items())):
            data = data_file(tmp, i, (
                f"{c} {statistics.median(by_chunk[c])}" for c in sorted(by_chunk)))
            plots.append(f"'{data}' using 1:2 with linespoints title '{name}'")
        return plot_png(png, """set title 'imgcast: per-node throughput vs chunk size (median)'
set xlabel 'chunk KiB'; set ylabel 'Mbit/s (image bits / transfer seconds)'; set logscale x 2""",
                        plots)


def main(paths):
    rows = load(paths)
    base = os.path.splitext(paths[0])[0]
    write_csv(rows, base + ".csv")
    lines = summary(rows)
    _, fit = alpha_beta(rows)
    outputs = [base + ".csv", base + ".md"]
    if plot_time_vs_nodes(rows, base + "-time-vs-nodes.png"):
        outputs.append(base + "-time-vs-nodes.png")
    if plot_throughput_vs_chunk(rows, base + "-throughput-vs-chunk.png"):
        outputs.append(base + "-throughput-vs-chunk.png")
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n\n" + fit + "\n")
    print("\n".join(lines))
    print()
    print(fit)
    print("wrote: " + ", ".join(outputs))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
