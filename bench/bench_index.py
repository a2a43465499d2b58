"""Benchmark of the query index: build, incremental update, lineage, log --where --sort.

    python bench/bench_index.py N [--dir DIR] [--mlflow /opt/peers/mlflow/bin/python] [--keep]

1. writes N synthetic records (bench/gen_records.py, packed by site and month) into a
   fresh git repository;
2. full index build from nothing, in records/s (two parsing processes unless
   CMFGIT_INDEX_JOBS says otherwise);
3. a refresh when nothing changed, and the incremental update after one new record;
4. warm queries in the process (median of 7): lineage up from a model and down
   from a data version, and ``log --where ... --sort ... -n 20``;
5. the same log query as a whole ``cmfgit log`` command (process start included);
6. with ``--mlflow PY``: MLflow's ``search_runs`` on the same runs (bench/mlflow_search.py).

Prints one JSON document (and a Markdown table on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
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

from cmfgit import index  # noqa: E402
from cmfgit.graph import Node  # noqa: E402
from cmfgit.query import CmfQuery  # noqa: E402
from cmfgit.repo import open_repo  # noqa: E402
from cmfgit.store import Store  # noqa: E402

QUERIES = {
    "selective": ('params.optimizer == "adam" and metrics.loss < 0.3', "metrics.loss"),
    "broad_sorted": ("params.lr >= 0.01 and metrics.loss < 1", "-metrics.loss"),
    "by_pipeline": ('pipeline == "pipe03" and stage == "evaluate" and metrics.acc > 0.8', "-metrics.acc"),
    "newest": (None, None),
}


def timed(fn: Any, repeat: int = 7) -> tuple[float, float, Any]:
    """(first, median of the rest, last result)."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times[0], statistics.median(times[1:] or times), result


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--mlflow", help="python of an MLflow install, to time search_runs on the same runs")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="cmfgit-bench-index-"))
    root = work / "repo"
    out: dict[str, Any] = {
        "bench": "index",
        "records": args.n,
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "jobs": index._jobs(),
        "date": datetime.now().isoformat(timespec="seconds"),
    }
    try:
        if not (root / ".cmf/objects").exists():
            root.mkdir(parents=True)
            git(root, "init", "-q", "-b", "main")
            subprocess.run([sys.executable, "-m", "cmfgit", "init"], cwd=root, check=True, capture_output=True)
            t0 = time.perf_counter()
            gen_records.write(root, args.n, "packed")
            out["generate_s"] = round(time.perf_counter() - t0, 1)
        repo = open_repo(root)
        for name in os.listdir(repo.worktree_state_dir) if repo.worktree_state_dir.exists() else ():
            if name.startswith("index"):
                os.unlink(repo.worktree_state_dir / name)

        t0 = time.perf_counter()
        index.open_index(repo).close()
        build = time.perf_counter() - t0
        out["full_build_s"] = round(build, 2)
        out["full_build_records_per_s"] = round(args.n / build)
        out["index_mib"] = round(os.path.getsize(index.index_path(repo, index.CHECKOUT)) / 2**20, 1)

        first, warm, _ = timed(lambda: index.open_index(repo).close())
        out["refresh_nothing_changed_s"] = round(warm, 4)

        new = gen_records.Generator(1, seed=time.time_ns()).records().__next__()  # always a new record
        Store(repo.objects_dir).put(new)
        t0 = time.perf_counter()
        ix = index.open_index(repo)
        out["incremental_one_record_s"] = round(time.perf_counter() - t0, 4)
        out["incremental_parsed"] = ix.stats["parsed"]
        ix.close()

        q = CmfQuery(repo)
        latest_model = q.artifacts(type="model", limit=1)[0]["hash"]
        data_version = q.db.execute(
            "SELECT a.hash FROM events ev JOIN artifacts a ON a.rowid = ev.art "
            "WHERE ev.path LIKE 'data/%/train.csv' ORDER BY ev.exec DESC LIMIT 1"
        ).fetchone()[0]
        for name, target, direction in (
            ("up_from_model", latest_model, "up"),
            ("down_from_data", data_version, "down"),
        ):
            f, w, (lin, _g) = timed(lambda t=target, d=direction: q.lineage([Node("artifact", t)], d))
            out[f"lineage_{name}"] = {
                "first_s": round(f, 4),
                "warm_s": round(w, 4),
                "executions": len(lin.executions()),
            }
        for name, (where, sort) in QUERIES.items():
            f, w, rows = timed(lambda wh=where, so=sort: q.executions(wh, sort=so, limit=20))
            out[f"log_{name}"] = {
                "where": where,
                "sort": sort,
                "first_s": round(f, 4),
                "warm_s": round(w, 4),
                "rows": len(rows),
            }
        q.close()

        where, sort = QUERIES["selective"]
        cmd = [
            sys.executable,
            "-m",
            "cmfgit",
            "log",
            "--json",
            "-n",
            "20",
            "--where",
            where or "",
            "--sort",
            sort or "",
        ]
        cli = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=root, check=True, capture_output=True)
            cli.append(time.perf_counter() - t0)
        out["cli_log_where_sort_s"] = round(statistics.median(cli), 3)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        out["python_c_pass_s"] = round(time.perf_counter() - t0, 3)

        if args.mlflow:
            runs_path = work / "runs.jsonl"
            with open(runs_path, "w", encoding="utf-8") as fh, CmfQuery(repo) as q2:
                for rid, pipeline, stage, started, params, metrics in q2.db.execute(
                    "SELECT r.id, e.pipeline, e.stage, e.started_at, e.params, e.metrics "
                    "FROM executions e JOIN records r ON r.rowid = e.rowid"
                ):
                    ms = int(datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() * 1000)
                    fh.write(
                        json.dumps(
                            {
                                "id": rid,
                                "pipeline": pipeline,
                                "stage": stage,
                                "started_ms": ms,
                                "params": json.loads(params),
                                "metrics": json.loads(metrics),
                            }
                        )
                        + "\n"
                    )
            proc = subprocess.run(
                [args.mlflow, str(HERE / "mlflow_search.py"), str(runs_path), str(work)], capture_output=True, text=True
            )
            if proc.returncode == 0:
                out["mlflow"] = json.loads(proc.stdout.strip().splitlines()[-1])
            else:
                out["mlflow_error"] = proc.stderr.strip().splitlines()[-1:] or ["failed"]
        out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(out, indent=1))
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
