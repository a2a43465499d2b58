"""Benchmark of ``cmfgit import mlflow`` (issue 13: >= 2,000 runs/s), beside MLflow's own
``search_runs`` over the same stores.

    python bench/bench_mlflow_import.py [--runs 10000] [--repeat 3] [--mlflow PYTHON] [--dir DIR]

1. MLflow's Python (``--mlflow``, default ``/opt/peers/mlflow/bin/python`` or
   ``$CMFGIT_BENCH_MLFLOW``) runs bench/workers/mlflow_store_worker.py: a file store and an
   sqlite database of N runs each (10 params, 5 metrics with ``loss`` at 20 steps, 3 user
   tags, MLflow's system tags), and the wall time of ``MlflowClient.search_runs`` reading
   every run of each back;
2. for each store, R times: a fresh git repository with ``cmfgit init``, then the whole
   command ``cmfgit import mlflow STORE`` (process start, reading the store, building,
   checking and writing the records and the tag annotations into packs), wall and CPU;
   then the same import again (a re-import: nothing is written).

Prints one JSON document, and a Markdown table on stderr, with the load average at the
start and the end: the machine is shared, so read the ratios.
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


def run(cwd: Path, *args: str) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of one cmfgit command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cmfgit", *args], cwd=cwd, check=True, capture_output=True, text=True)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, proc.stdout


def fresh_repo(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True)
    subprocess.run([sys.executable, "-m", "cmfgit", "init"], cwd=path, check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mlflow", default=os.environ.get("CMFGIT_BENCH_MLFLOW", "/opt/peers/mlflow/bin/python"))
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="cmfgit-bench-mlflow-"))
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {
        "bench": "import_mlflow",
        "runs": args.runs,
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.now().isoformat(timespec="seconds"),
    }
    try:
        stores = work / "stores"
        shutil.rmtree(stores, ignore_errors=True)
        stores.mkdir()
        proc = subprocess.run(
            [
                args.mlflow,
                str(HERE / "workers" / "mlflow_store_worker.py"),
                str(args.runs),
                str(stores),
                "--repeat",
                str(args.repeat),
            ],  # fmt: skip
            capture_output=True,
            text=True,
            check=True,
        )
        peer = json.loads(proc.stdout.strip().splitlines()[-1])
        out["mlflow"] = peer["mlflow"]
        total = args.runs + 1  # the template run MLflow logged itself
        for kind in ("file", "sqlite"):
            source = str(stores / ("mlruns" if kind == "file" else "mlflow.db"))
            walls, cpus, again = [], [], []
            for _ in range(args.repeat):
                repo = work / "repo"
                fresh_repo(repo)
                wall, cpu, text = run(repo, "import", "mlflow", source, "--json")
                report = json.loads(text)
                assert report["runs"] == total and report["written"] == total, report
                walls.append(wall)
                cpus.append(cpu)
                wall2, _cpu2, text2 = run(repo, "import", "mlflow", source, "--json")
                assert json.loads(text2)["written"] == 0
                again.append(wall2)
            search = peer[kind]["search_runs"]["median_s"]
            out[kind] = {
                "import_s": [round(t, 2) for t in walls],
                "import_cpu_s": [round(t, 2) for t in cpus],
                "import_runs_per_s": round(total / statistics.median(walls)),
                "import_runs_per_cpu_s": round(total / statistics.median(cpus)),
                "reimport_s": [round(t, 2) for t in again],
                "mlflow_make_s": peer[kind]["make_s"],
                "mlflow_search_runs_s": search,
                "mlflow_search_runs_per_s": round(total / search),
                "ratio_import_vs_search_runs": round(search / statistics.median(walls), 2),
            }
    finally:
        out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2))
    lines = [
        f"| store | runs | cmfgit import, wall (median of {args.repeat}) | runs/s | runs/CPU-s | re-import | MLflow"
        " search_runs (all runs) | runs/s | import vs search_runs | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in ("file", "sqlite"):
        k = out.get(kind)
        if not k:
            continue
        lines.append(
            f"| {kind} | {args.runs + 1:,} | {statistics.median(k['import_s']):.2f} s | {k['import_runs_per_s']:,}"
            f" | {k['import_runs_per_cpu_s']:,} | {statistics.median(k['reimport_s']):.2f} s"
            f" | {k['mlflow_search_runs_s']:.2f} s | {k['mlflow_search_runs_per_s']:,}"
            f" | {k['ratio_import_vs_search_runs']}x | {out['loadavg_start'][0]} -> {out['loadavg_end'][0]} |"
        )
    print("\n".join(lines), file=sys.stderr)


if __name__ == "__main__":
    main()
