"""Executions per second through the Python API, beside MLflow (and cmflib).

cmfgit: ``workers/api_worker.py`` in the bench venv, N executions of 10
params, 2 inputs, 1 output and 5 metrics each, no git commit. MLflow: the
same shape in one process (``bench-peers/mlflow_bench.py --worker``: start_run,
log_params(10), log_metrics(5), set_tag(hash), end_run) on sqlite and, in the
full run, on the file store. cmflib (full run only): create_execution, two
log_dataset and log_execution_metrics, without finalize
(``bench-peers/cmflib_bench.py``).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

import common
from bench_logrun import MLFLOW_ENV

NAME = "api"
TITLE = "Python API executions/s vs MLflow runs/s in one process"


def _mlflow_runs_per_s(ctx: common.Context, backend: str, runs: int) -> dict[str, Any] | None:
    python = ctx.peer("mlflow")
    if python is None:
        return None
    store = ctx.mkdtemp(f"mlflow-{backend}-")
    proc = ctx.run(
        [python, str(common.PEERS_DIR / "mlflow_bench.py"), "--worker", "--worker-dir", str(store)]
        + ["--backend", backend, "--mode", "tag", "--runs", str(runs), "--search-repeats", "1"],
        env=MLFLOW_ENV,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"runs": runs, "loop_s": out["loop_s"], "per_s": runs / out["loop_s"], "version": out["mlflow_version"]}


def _cmflib(ctx: common.Context, executions: int) -> dict[str, Any] | None:
    python = ctx.peer("cmflib")
    if python is None or ctx.quick:
        return None
    out = ctx.peer_script(
        "cmflib_bench.py",
        "--cmf-python",
        python,
        "--executions",
        str(executions),
        "--perproc",
        "0",
        "--tmp",
        str(ctx.tmp),
    )
    inproc = out.get("results", {}).get("inproc")
    if not inproc:
        return {"error": out.get("errors") or out.get("skipped")}
    per = inproc["total_excl_finalize"]["median_s"]
    return {"executions": executions, "per_execution_s": per, "per_s": 1 / per, "versions": out.get("versions")}


def run(ctx: common.Context) -> dict[str, Any]:
    runs = 300 if ctx.quick else 1000
    repo = ctx.make_repo("api")
    (repo / "data").mkdir()
    for name in ("a.csv", "b.csv"):
        (repo / "data" / name).write_bytes(b"x,y\n" + os.urandom(2048).hex().encode())
    (repo / "model.bin").write_bytes(os.urandom(4096))
    time.sleep(2.1)  # past the hash cache's racy-clean window: unchanged files are then trusted by stat
    cached = ctx.worker("api_worker", str(repo), str(runs))
    fresh = None if ctx.quick else ctx.worker("api_worker", str(repo), str(runs // 2), "--fresh-output")
    records = sum(1 for _ in (repo / ".cmf" / "objects").rglob("*.yaml"))
    expected = runs + 1 + (0 if fresh is None else fresh["runs"] + 1)
    if records != expected:
        raise RuntimeError(f"expected {expected} records, found {records}")
    ctx.run([ctx.cmfgit, "fsck"], repo)

    per_s = runs / cached["loop_s"]
    floor_per_s = 1 / statistics.median(cached["fsync_floor_s"])
    mlflow_sqlite = _mlflow_runs_per_s(ctx, "sqlite", 200 if ctx.quick else 500)
    mlflow_file = None if ctx.quick else _mlflow_runs_per_s(ctx, "file", 500)
    cmflib = _cmflib(ctx, 5)

    # Inside the runs: each run's own create + rename and fsync, and the rest.
    per_run, fsyncs, creates = cached["per_run_s"], cached["run_fsync_s"], cached["run_create_rename_s"]
    rest = [t - f - c for t, f, c in zip(per_run, fsyncs, creates)]
    split = {
        "per_run_ms": common.ms(statistics.median(per_run)),
        "mean_per_run_ms": common.ms(statistics.fmean(per_run)),
        "fsync_ms": common.ms(statistics.median(fsyncs)),
        "mean_fsync_ms": common.ms(statistics.fmean(fsyncs)),
        "create_rename_ms": common.ms(statistics.median(creates)),
        "rest_ms": common.ms(statistics.median(rest)),
        "mean_rest_ms": common.ms(statistics.fmean(rest)),
    }

    target = "≥ 1,000 executions/s"
    rows = [
        common.row(
            f"executions/s, {runs} runs, inputs/output unchanged (stat cache)",
            round(per_s, 1),
            "/s",
            peer=None if mlflow_sqlite is None else round(mlflow_sqlite["per_s"], 1),
            peer_name="" if mlflow_sqlite is None else "MLflow runs/s (sqlite)",
            higher_is_better=True,
            target=target,
            met=per_s >= 1000,
            note=f"median {common.ms(statistics.median(cached['per_run_s'])):.2f} ms per run",
        ),
        common.row(
            "inside those runs: the record's fsync, median per run",
            round(split["fsync_ms"] * 1000),
            "µs",
            note=f"mean {split['mean_fsync_ms'] * 1000:.0f} µs; the record's create + rename: median "
            f"{split['create_rename_ms'] * 1000:.0f} µs",
        ),
        common.row(
            "inside those runs: everything else (cmfgit's Python, its stat calls, the write), median per run",
            round(split["rest_ms"] * 1000),
            "µs",
            note=f"mean {split['mean_rest_ms'] * 1000:.0f} µs; at this cost alone: "
            f"{1000 / split['mean_rest_ms']:,.0f} runs/s",
        ),
        common.row(
            "fsync floor: create + write + fsync + rename one record-sized file",
            round(floor_per_s, 1),
            "/s",
            note=f"median {common.ms(statistics.median(cached['fsync_floor_s'])):.2f} ms; "
            f"cmfgit reaches {per_s / floor_per_s:.0%} of it",
        ),
    ]
    if fresh is not None:
        fresh_per_s = fresh["runs"] / fresh["loop_s"]
        rows.append(
            common.row(
                f"executions/s, {fresh['runs']} runs, output rewritten and hashed each run",
                round(fresh_per_s, 1),
                "/s",
                peer=None if mlflow_file is None else round(mlflow_file["per_s"], 1),
                peer_name="" if mlflow_file is None else "MLflow runs/s (file store)",
                higher_is_better=True,
                target=target,
                met=fresh_per_s >= 1000,
            )
        )
    if cmflib is not None and "per_s" in cmflib:
        rows.append(
            common.row(
                "executions/s in process (cmflib: create_execution + 2 log_dataset + metrics)",
                round(per_s, 1),
                "/s",
                peer=round(cmflib["per_s"], 3),
                peer_name="cmflib",
                higher_is_better=True,
            )
        )
    return {
        "rows": rows,
        "raw": {
            "cmfgit": {
                "runs": runs,
                "loop_s": cached["loop_s"],
                "per_run_s": common.stats(cached["per_run_s"]),
                "split_ms": {k: round(v, 4) for k, v in split.items()},
                "import_s": cached["import_s"],
                "fsync_floor_s": common.stats(cached["fsync_floor_s"]),
                "record_bytes": cached["record_bytes"],
            },
            "cmfgit_fresh_output": None
            if fresh is None
            else {"runs": fresh["runs"], "loop_s": fresh["loop_s"], "per_run_s": common.stats(fresh["per_run_s"])},
            "mlflow_sqlite": mlflow_sqlite,
            "mlflow_file": mlflow_file,
            "cmflib": cmflib,
        },
        "notes": [
            "Inputs and output were created, then left to age 2.1 s (the hash cache does not trust files "
            "modified less than 2 s before hashing), so they are re-checked by stat, as in a sweep.",
            "Every execution writes its record with fsync (DESIGN §11); the fsync floor row is the ceiling "
            "that leaves for this disk in this run.",
            "The 'inside those runs' rows time each run's own create/rename and fsync (wrappers around os.open, "
            "os.fsync and os.replace that call the real functions); the rest is cmfgit's Python and its stat calls.",
        ],
    }
