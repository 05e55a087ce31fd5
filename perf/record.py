#!/usr/bin/env python3
"""Appends one benchmark result to a JSON-lines file and prints it as a Markdown row.

    perf/record.py OUT key=value ...      values are JSON when they parse as JSON, else text
    perf/record.py OUT --json LINE [key=value ...]
                                          a result already in JSON (plus fields to add)
    perf/record.py OUT --merge-imgcast REPORT TIME SIZE_MIB NODES
        adds imgcast's own view of the last result: setup and transfer seconds, plan, and CPU
        seconds per GiB per node (REPORT: its --json summary; TIME: "user sys" of the root and
        every agent it reaped)

Every imgcast result carries three times: `seconds` = `whole_command_seconds`, the wall time
from the command's start to its exit as the caller measured it (what a job script pays: the
headline figure), and imgcast's own `setup_seconds` (start to the first data) and
`transfer_seconds` (first data to the last verified copy: the transfer phase).
"""
import json
import sys


def markdown_row(row):
    if row.get("verified", True):
        seconds, ratio = row["seconds"], row.get("ratio_to_ideal", "-")
    else:
        seconds, ratio = f"NOT VERIFIED ({row.get('copies')})", "-"
    return (f"| {row['nodes']} | {row['size_mib']} | {row['system']} | {row.get('variant', '')} | "
            f"{row.get('rep', '')} | {seconds} | {ratio} | {row.get('machine_cpu_percent', '-')} |")


def main(argv):
    path, rest = argv[1], argv[2:]
    if rest[:1] == ["--merge-imgcast"]:
        report, times, size, nodes = rest[1:5]
        doc = json.load(open(report))
        # GNU time's last line is "user sys"; a failed command adds "Command exited ..." first.
        user, system = (float(x) for x in open(times).read().splitlines()[-1].split()[:2])
        lines = open(path).read().splitlines()
        row = json.loads(lines[-1])
        row.update({"whole_command_seconds": row.get("seconds"),
                    "setup_seconds": doc["setup_seconds"],
                    "transfer_seconds": doc["transfer_seconds"], "plan": doc["plan"],
                    "chunk_bytes": doc["chunk_bytes"], "topology": doc["topology"],
                    "cpu_s_per_gib_per_node":
                        round((user + system) / (int(size) / 1024) / int(nodes), 4)})
        lines[-1] = json.dumps(row)
        open(path, "w").write("\n".join(lines) + "\n")
        return
    row = {}
    if rest[:1] == ["--json"]:
        row, rest = json.loads(rest[1]), rest[2:]
    for pair in rest:
        key, _, value = pair.partition("=")
        try:
            row[key] = json.loads(value)
        except ValueError:
            row[key] = value
    if row.get("verified", True) and "seconds" in row and row.get("ideal_seconds"):
        row["ratio_to_ideal"] = round(row["seconds"] / row["ideal_seconds"], 3)
    with open(path, "a") as out:
        out.write(json.dumps(row) + "\n")
    print(markdown_row(row), flush=True)


if __name__ == "__main__":
    main(sys.argv)
