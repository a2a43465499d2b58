"""Start-up cost of recording one run from the shell.

``cmfgit log-run -q -- true`` in a clean, initialised repo, interleaved with
``python -c pass`` (the same interpreter: the floor of any Python CLI) and
``git status`` (the floor of one git process). The peer is MLflow's CLI-per-
run pattern: a fresh process that imports mlflow, opens an existing sqlite
store, logs one run (10 params, 5 metrics, 1 tag) and exits
(``bench-peers/mlflow_bench.py --oneshot``).
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import common

NAME = "logrun"
TITLE = "`cmfgit log-run -- true` vs `python -c pass` and a one-shot MLflow process"
MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ALLOW_FILE_STORE": "true",
    "PYTHONWARNINGS": "ignore",
}


def _mlflow_oneshot(ctx: common.Context, repeats: int, populate: int) -> dict[str, Any] | None:
    python = ctx.peer("mlflow")
    if python is None:
        return None
    script = str(common.PEERS_DIR / "mlflow_bench.py")
    store = ctx.mkdtemp("mlflow-oneshot-")
    ctx.run(
        [python, script, "--worker", "--worker-dir", str(store), "--backend", "sqlite", "--mode", "tag"]
        + ["--runs", str(populate), "--search-repeats", "1"],
        env=MLFLOW_ENV,
    )
    walls: list[float] = []
    parts: list[dict[str, float]] = []
    for _ in range(repeats):
        t = time.perf_counter()
        proc = ctx.run([python, script, "--oneshot", "--worker-dir", str(store), "--backend", "sqlite"], env=MLFLOW_ENV)
        walls.append(time.perf_counter() - t)
        parts.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {
        "wall_s": walls,
        "import_s": [p["import_s"] for p in parts],
        "one_run_s": [p["one_run_s"] for p in parts],
        "store_runs": populate,
    }


def run(ctx: common.Context) -> dict[str, Any]:
    repeats = 10 if ctx.quick else 30
    repo = ctx.make_repo("logrun")
    commands = {
        "python -c pass": [ctx.python, "-c", "pass"],
        "cmfgit log-run": [ctx.cmfgit, "log-run", "-q", "--", "true"],
        "git status": ["git", "status", "--porcelain"],
    }
    samples = common.time_commands(ctx, commands, repeats, repo)
    records = sum(1 for p in (repo / ".cmf" / "objects").rglob("*.yaml"))
    if records < repeats:
        raise RuntimeError(f"expected at least {repeats} records, found {records}")
    fsck = ctx.run([ctx.cmfgit, "fsck"], repo)
    median = {name: statistics.median(xs) for name, xs in samples.items()}
    lr, floor = median["cmfgit log-run"], median["python -c pass"]

    mlflow = _mlflow_oneshot(ctx, repeats=2 if ctx.quick else 5, populate=20 if ctx.quick else 200)
    rows = [
        common.row(
            f"`cmfgit log-run -q -- true`, wall, median of {repeats}",
            common.ms(lr),
            "ms",
            peer=common.ms(floor),
            peer_name="`python -c pass`",
            target="≤ 100 ms, or ≤ 5× `python -c pass`",
            met=lr <= 0.100 or lr <= 5 * floor,
            note=f"{lr / floor:.1f}× python -c pass; min {common.ms(min(samples['cmfgit log-run'])):.1f} ms",
        ),
        common.row(
            "one `git status` process (floor reference)",
            None,
            "ms",
            peer=common.ms(median["git status"]),
            peer_name="`git status --porcelain`",
        ),
    ]
    if mlflow is not None:
        ml = statistics.median(mlflow["wall_s"])
        rows.append(
            common.row(
                "record one run from a fresh process, wall",
                common.ms(lr),
                "ms",
                peer=common.ms(ml),
                peer_name="MLflow one-shot (sqlite)",
                note=f"MLflow: import {statistics.median(mlflow['import_s']):.2f} s of it",
            )
        )
    return {
        "rows": rows,
        "raw": {
            "samples_s": samples,
            "stats_s": {name: common.stats(xs) for name, xs in samples.items()},
            "records_written": records,
            "fsck": fsck.stdout.strip()[-200:],
            "mlflow_oneshot": mlflow,
        },
        "notes": [
            "Each log-run writes and fsyncs one record and runs 2 git processes (status, config); "
            "the first run on a commit also runs ls-tree + mktree (cached afterwards in .git/cmf/cleantree)."
        ],
    }
