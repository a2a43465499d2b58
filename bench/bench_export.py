"""Benchmark of ``cmfgit export --format openlineage`` (issue 13: >= 10,000 records/s).

    python bench/bench_export.py N [--dir DIR] [--repeat R] [--keep]

1. writes N synthetic execution records (bench/gen_records.py, packed by site and month)
   into a fresh git repository, and builds its query index (``cmfgit log -n 1``, timed apart);
2. times the whole command ``cmfgit export --format openlineage -o FILE`` (process start,
   reading the records from the index and their files, building and writing the events),
   R times, and reports the median in records/s;
3. in one process, splits one export into its two halves as the command runs them:
   selecting the records (``exporters.command.select_data``: the index query, reading the
   record bytes, tags and metadata commits) and parsing them, building and serialising the
   events (``openlineage.lines_of_records``: in two worker processes from 4,000 records, so
   its CPU column is the main process's only).

Prints one JSON document (and a Markdown table on stderr), with the load average at the
start and the end: the machine is shared, so read the figures with it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import gen_records  # noqa: E402

from cmfgit.exporters import command  # noqa: E402
from cmfgit.exporters import openlineage as ol  # noqa: E402
from cmfgit.repo import open_repo  # noqa: E402

CPU: list[float] = []  # user + system CPU seconds of each run() child


def run(root: Path, *args: str) -> float:
    """Wall seconds of one cmfgit command (its CPU seconds appended to CPU)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cmfgit", *args], cwd=root, check=True, capture_output=True)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="cmfgit-bench-export-"))
    root = work / "repo"
    out: dict[str, Any] = {
        "bench": "export_openlineage",
        "records": args.n,
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.now().isoformat(timespec="seconds"),
    }
    try:
        if not (root / ".cmf/objects").exists():
            root.mkdir(parents=True)
            subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
            subprocess.run([sys.executable, "-m", "cmfgit", "init"], cwd=root, check=True, capture_output=True)
            t0 = time.perf_counter()
            gen_records.write(root, args.n, "packed")
            out["generate_s"] = round(time.perf_counter() - t0, 1)
        out["index_build_s"] = round(run(root, "log", "-n", "1"), 2)
        run(root, "log", "-n", "1")  # the first log of a clone may answer before the full index exists
        target = work / "events.jsonl"
        times = [run(root, "export", "--format", "openlineage", "-o", str(target)) for _ in range(args.repeat)]
        with open(target, encoding="utf-8") as f:
            out["events"] = sum(1 for _ in f)
        out["file_mib"] = round(target.stat().st_size / 2**20, 1)
        out["command_s"] = [round(t, 2) for t in times]
        out["command_records_per_s"] = round(args.n / statistics.median(times))
        cpu = CPU[-args.repeat :]
        out["command_cpu_s"] = [round(t, 2) for t in cpu]
        out["command_records_per_cpu_s"] = round(args.n / statistics.median(cpu))

        repo = open_repo(root)
        t0, c0 = time.perf_counter(), time.process_time()
        found, tags, commits = command.select_data(repo)
        select_s, select_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        size = sum(len(block) + 1 for block in ol.lines_of_records(found, tags, commits, blocks=True))
        build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        out["select_s"] = round(select_s, 2)
        out["select_cpu_s"] = round(select_cpu, 2)
        out["build_and_serialise_s"] = round(build_s, 2)
        out["build_and_serialise_cpu_s"] = round(build_cpu, 2)
        out["build_records_per_s"] = round(args.n / build_s)
        out["build_records_per_cpu_s"] = round(args.n / build_cpu)
        out["serialised_mib"] = round(size / 2**20, 1)
    finally:
        out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        if not args.keep and args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2))
    print(
        "| records | events | command, wall (median of {r}) | records/s wall | records/CPU-s | select wall / CPU |"
        " build+serialise wall / CPU | load avg |\n"
        "|---|---|---|---|---|---|---|---|\n"
        "| {records:,} | {events:,} | {cmd:.2f} s | {rps:,} | {cps:,} | {sel} / {selc} s | {build} / {buildc} s"
        " | {l0} -> {l1} |".format(
            r=args.repeat,
            records=args.n,
            events=out.get("events", 0),
            cmd=statistics.median(out.get("command_s") or [0]),
            rps=out.get("command_records_per_s", 0),
            cps=out.get("command_records_per_cpu_s", 0),
            sel=out.get("select_s"),
            selc=out.get("select_cpu_s"),
            build=out.get("build_and_serialise_s"),
            buildc=out.get("build_and_serialise_cpu_s"),
            l0=out["loadavg_start"][0],
            l1=out["loadavg_end"][0],
        ),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
