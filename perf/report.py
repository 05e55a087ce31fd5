#!/usr/bin/env python3
"""Summarises benchmark JSON lines (perf/emulated.sh) into CSV, Markdown and PNG plots.

    perf/report.py RESULTS.jsonl [MORE.jsonl ...]

Writes beside the first file: NAME.csv (every run), NAME.md (median and min-max per system and
setting, with reps counted only when every copy verified; for imgcast the whole command, wall
time from its start to its exit, beside its setup and its transfer phase; with perf/headline.sh's
cases, the issue-20 ratios per case), NAME-time-vs-nodes.png (seconds vs N per system, imgcast's
whole command and transfer phase as separate lines, with the ideal S*8/RATE; one plot per
destination filesystem, NAME-time-vs-nodes-disk.png beside it) and, when imgcast ran with
several chunk sizes,
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


def dest_fs(row):
    return row.get("dest_fs", "tmpfs")


def group(rows):
    groups = {}
    for row in rows:
        key = (row["nodes"], row["size_mib"], row.get("rate_mbit"), dest_fs(row), row["system"],
               row.get("variant", ""))
        groups.setdefault(key, []).append(row)
    return groups


def median_of(runs, field, digits=2):
    values = [r[field] for r in runs if isinstance(r.get(field), (int, float))]
    return f"{statistics.median(values):.{digits}f}" if values else ""


def summary(rows):
    """One line per setting. `median s` is what the system's own script measured; for imgcast
    that is the whole command (start to exit), with its setup and transfer phase beside it."""
    lines = ["| nodes | MiB | Mbit/s | dest | system | variant | runs ok | median s (imgcast: whole "
             "command) | min–max s | median ÷ ideal | imgcast setup s | imgcast transfer phase s "
             "| median CPU % |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    def order(item):
        nodes, size, rate, fs, system, variant = item[0]
        return (fs != "tmpfs", fs, nodes, size, rate or 0, system != "calibration", system, variant)

    for key, runs in sorted(group(rows).items(), key=order):
        head = " | ".join(str(k).replace("|", "\\|") for k in key)
        ok = [r for r in runs if r.get("verified", True)]
        if not ok:
            lines.append(f"| {head} | 0/{len(runs)} | not verified | | | | | |")
            continue
        seconds = [r["seconds"] for r in ok]
        ratios = [r["seconds"] / r["ideal_seconds"] for r in ok if r.get("ideal_seconds")]
        ratio = f"{statistics.median(ratios):.3f}" if ratios and "ideal" not in key[5] else "-"
        cpu = median_of(ok, "machine_cpu_percent", 0) or "-"
        lines.append(
            f"| {head} | {len(ok)}/{len(runs)} | {statistics.median(seconds):.2f} | "
            f"{min(seconds):.2f}–{max(seconds):.2f} | {ratio} | {median_of(ok, 'setup_seconds')} | "
            f"{median_of(ok, 'transfer_seconds')} | {cpu} |")
    return lines


# perf/headline.sh's cases (issue 20): what imgcast's whole command (default flags) is compared
# with, and the goal for each ratio.
CASES = {
    "case1": "16 hosts, 200 Mbit/s, 256 MiB, tmpfs",
    "case2": "2 hosts, 10 Gbit/s, 1 GiB, tmpfs",
    "case3": "2 hosts, 10 Gbit/s, 1 GiB, disk",
    "case4": "4 hosts, 1 Gbit/s, 1 GiB, disk",
}
GOALS = {
    "case1": [("ideal", 1.15), ("ring", 1.05)],
    "case2": [("link", 1.3), ("cpu", 1.3)],
    "case3": [("netcat", 1.0)],
    "case4": [("max(link, ddfloor)", 1.15)],
}


def headline(rows):
    """Medians per case and the ratios issue 20 asks for, imgcast's whole command over each
    reference measured in the same run (interleaved). Returns the Markdown lines and the bars
    for the plot: (short label, ratio, goal)."""
    bars = []
    cases = sorted({r["case"] for r in rows if r.get("case") in GOALS})
    if not cases:
        return [], bars
    lines = ["## Headline (issue 20): imgcast's whole command, default flags, medians of "
             "interleaved runs", "",
             "| case | nodes, MiB, Mbit/s, dest | imgcast whole command s | setup s | transfer "
             "phase s | reference | reference s | ratio | goal |",
             "|---|---|---|---|---|---|---|---|---|"]
    for case in cases:
        mine = [r for r in rows if r.get("case") == case and r.get("verified", True)]
        img = [r for r in mine if r["system"] == "imgcast"]
        if not img:
            lines.append(f"| {case} | | no verified imgcast run | | | | | | |")
            continue
        first = img[0]
        where = f"{first['nodes']}, {first['size_mib']}, {first['rate_mbit']}, {dest_fs(first)}"
        whole = statistics.median(r["seconds"] for r in img)

        def ref(kind):
            pick = {
                "ideal": lambda r: r["system"] == "calibration" and "ideal" in r.get("variant", ""),
                "ring": lambda r: r["system"] == "calibration" and "ring" in r.get("variant", ""),
                "link": lambda r: r["system"] == "calibration" and "one link" in r.get("variant", ""),
                "ddfloor": lambda r: r["system"] == "calibration" and "write floor" in r.get("variant", ""),
                "netcat": lambda r: r["system"] == "netcat",
            }[kind]
            values = [r["seconds"] for r in mine if pick(r)]
            return statistics.median(values) if values else None

        for kind, goal in GOALS[case]:
            if kind == "cpu":
                a = [r["cpu_s_per_gib_per_node"] for r in img if "cpu_s_per_gib_per_node" in r]
                b = [r["cpu_s_per_gib_send_and_receive"] for r in mine
                     if "cpu_s_per_gib_send_and_receive" in r]
                label = "CPU s/GiB/node ÷ iperf3 send+receive s/GiB"
                value = (statistics.median(a), statistics.median(b)) if a and b else None
                ours, theirs = value if value else (None, None)
            elif kind.startswith("max("):
                parts = [ref("link"), ref("ddfloor")]
                theirs = max(parts) if None not in parts else None
                label = (f"max(one link {parts[0]:.2f}, parallel dd conv=fsync {parts[1]:.2f})"
                         if theirs else kind)
                ours = whole
            else:
                theirs, ours = ref(kind), whole
                label = {"ideal": "ideal S*8/RATE", "ring": "calibration ring (every link busy)",
                         "link": "iperf3 one link, memory to memory",
                         "netcat": "netcat pipeline (tee + nc, sync + mv)"}[kind]
            if theirs is None:
                lines.append(f"| {case} | {where} | {whole:.2f} | | | {label} | not measured | | ≤ {goal} |")
                continue
            ratio = ours / theirs
            mark = "ok" if ratio <= goal else "MISSED"
            short = {"ideal": "ideal", "ring": "ring", "link": "iperf3", "netcat": "netcat",
                     "cpu": "iperf3 CPU"}.get(kind, "max(link, dd)")
            bars.append((f"{case} {where.rsplit(', ', 1)[1]}\\n÷ {short}", ratio, goal))
            shown = f"{theirs:.2f}" if kind != "cpu" else f"{ours:.2f} ÷ {theirs:.2f}"
            lines.append(
                f"| {case} | {where} | {whole:.2f} ({len(img)} runs) | "
                f"{median_of(img, 'setup_seconds')} | {median_of(img, 'transfer_seconds')} | "
                f"{label} | {shown} | **{ratio:.3f}** | ≤ {goal} {mark} |")
    return lines, bars


def plot_headline(bars, png):
    """One bar per ratio (imgcast's whole command ÷ its reference, medians), its goal beside it,
    and the line 1.0: below it imgcast is faster than the reference."""
    if not bars:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        data = data_file(tmp, "bars", (f'"{label}" {ratio:.4f} {goal}'
                                       for label, ratio, goal in bars))
        top = max(max(b[1] for b in bars), max(b[2] for b in bars)) * 1.15
        return plot_png(png, f"""set title "Issue 20 headline: imgcast's whole command (default flags) / reference, medians of interleaved runs"
set ylabel 'ratio (lower is better)'; set yrange [0:{top:.2f}]
set style fill solid 0.6 border -1; set boxwidth 0.55; set xrange [-0.6:{len(bars) - 0.4}]
set arrow from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 lc rgb 'black'""", [
            f"'{data}' using 0:2:xtic(1) with boxes lc rgb '#4477aa' title 'imgcast / reference: whole command (the CPU bar: CPU s per GiB)'",
            f"'{data}' using 0:2:(sprintf('%.2f', $2)) with labels offset 0,0.8 notitle",
            f"'{data}' using 0:3 with points pt 9 ps 2.5 lc rgb '#cc3311' title 'goal'"])


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
    """Draws `plots` into `png`: both plots share the page, the grid, the legend (below the
    axes, outside the data, so long names never narrow the plot) and the plot
    line, and differ in title, axes and scales (`settings`, gnuplot lines)."""
    rows = len(plots)  # one legend line per plot: gnuplot drops to one column for long names
    return gnuplot(f"""set terminal pngcairo size 1100,{560 + 22 * rows} noenhanced font ',11'
set output '{png}'
{settings}
set grid
set key outside below center horizontal maxcols 2 width 2 spacing 1.2 box opaque
set bmargin {4 + 1.3 * rows:.0f}
set xlabel offset 0,0.5
plot {', '.join(plots)}
""")


def plot_time_vs_nodes(rows, png, fs):
    ok = [r for r in rows if r.get("verified", True) and r["system"] != "calibration"
          and dest_fs(r) == fs]
    if not ok:
        return False
    size = max(r["size_mib"] for r in ok)
    rate = max(r.get("rate_mbit") or 0 for r in ok if r["size_mib"] == size)
    series = {}
    for r in ok:
        if r["size_mib"] != size or r.get("rate_mbit") != rate:
            continue
        name = f"{r['system']} {r.get('variant', '')}".strip()
        if r["system"] == "imgcast":
            series.setdefault(name + ": whole command", {}).setdefault(
                r["nodes"], []).append(r["seconds"])
            if isinstance(r.get("transfer_seconds"), (int, float)):
                series.setdefault(name + ": transfer phase only", {}).setdefault(
                    r["nodes"], []).append(r["transfer_seconds"])
        else:
            series.setdefault(name, {}).setdefault(r["nodes"], []).append(r["seconds"])
    ideal = {r["nodes"]: r["ideal_seconds"] for r in ok
             if r["size_mib"] == size and r.get("rate_mbit") == rate}
    with tempfile.TemporaryDirectory() as tmp:
        plots = []
        # imgcast's whole command first, its transfer phase right after it, then the peers.
        def rank(item):
            name = item[0]
            return (not name.startswith("imgcast"), name.replace(": transfer phase only", ": ~"))

        for i, (name, by_n) in enumerate(sorted(series.items(), key=rank)):
            data = data_file(tmp, i, (
                f"{n} {statistics.median(by_n[n])} {min(by_n[n])} {max(by_n[n])}"
                for n in sorted(by_n)))
            style = " dashtype 3" if name.endswith("transfer phase only") else ""
            title = name.replace("'", "''")  # gnuplot's quote inside '...'
            plots.append(f"'{data}' using 1:2:3:4 with yerrorlines lw 2{style} title '{title}'")
        data = data_file(tmp, "ideal", (f"{n} {ideal[n]}" for n in sorted(ideal)))
        plots.append(f"'{data}' using 1:2 with linespoints pt 6 dashtype 2 lw 2 lc rgb 'black' "
                     f"title 'ideal S*8/RATE'")
        every = [x for by_n in series.values() for v in by_n.values() for x in v]
        wide = max(every) > 5 * min(min(every), min(ideal.values()))
        scale = ("set ylabel 'seconds (log scale)'; set logscale y" if wide else
                 "set ylabel 'seconds'; set yrange [0:*]")
        return plot_png(png, f"""set title 'Time to place {size} MiB on every node ({fs} destinations), {rate} Mbit/s links: median, min-max'
set xlabel 'nodes'; {scale}; set xtics ({', '.join(str(n) for n in sorted(ideal))})
set offsets 0.5, 0.5, 0, 0""", plots)


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
    outputs = [base + ".csv", base + ".md"]
    top, bars = headline(rows)
    if plot_headline(bars, base + "-headline.png"):
        outputs.append(base + "-headline.png")
    if top:
        lines = top + ["", "## Every setting", ""] + lines
    _, fit = alpha_beta(rows)
    for fs in sorted({dest_fs(r) for r in rows}, key=lambda f: f != "tmpfs"):
        png = base + "-time-vs-nodes" + ("" if fs == "tmpfs" else f"-{fs}") + ".png"
        if plot_time_vs_nodes(rows, png, fs):
            outputs.append(png)
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
