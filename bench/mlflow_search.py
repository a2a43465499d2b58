"""MLflow ``search_runs`` over the same runs the cmfgit index benchmark queries.

Run with MLflow's Python (bench_index.py does this):

    /opt/peers/mlflow/bin/python bench/mlflow_search.py RUNS.jsonl WORKDIR

RUNS.jsonl has one run per line: {"id", "started_ms", "pipeline", "stage",
"params", "metrics"}. Logging a million runs through MLflow's API would take
hours (about 20 runs/s on this machine), so the runs are bulk-inserted into the
tables of an sqlite tracking store that MLflow itself created (its schema and
migrations), then queried through the public API. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import sys
import time

QUERIES = {
    # The same questions as bench_index.py, in MLflow's filter language (params are strings there).
    "selective": ("params.optimizer = 'adam' and metrics.loss < 0.3", ["metrics.loss ASC"]),
    "broad_sorted": ("metrics.loss < 1", ["metrics.loss DESC"]),
    "by_pipeline": ("tags.pipeline = 'pipe03' and tags.stage = 'evaluate' and metrics.acc > 0.8", ["metrics.acc DESC"]),
}


def main() -> None:
    runs_path, workdir = sys.argv[1], sys.argv[2]
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    t0 = time.perf_counter()
    import mlflow

    import_s = time.perf_counter() - t0
    db = os.path.join(workdir, "mlflow.db")
    if os.path.exists(db):
        os.unlink(db)
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    exp_id = mlflow.set_experiment("bench").experiment_id
    conn = sqlite3.connect(db)
    t0 = time.perf_counter()
    n = 0
    with open(runs_path, encoding="utf-8") as fh:
        batch: list[dict] = []
        for line in fh:
            batch.append(json.loads(line))
            if len(batch) >= 20000:
                n += insert(conn, exp_id, batch)
                batch = []
        n += insert(conn, exp_id, batch)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    load_s = time.perf_counter() - t0
    results = {}
    for name, (filt, order) in QUERIES.items():
        times, rows = [], 0
        for _ in range(5):
            t0 = time.perf_counter()
            frame = mlflow.search_runs(experiment_ids=[exp_id], filter_string=filt, order_by=order, max_results=20)
            times.append(time.perf_counter() - t0)
            rows = len(frame)
        results[name] = {
            "filter": filt,
            "order_by": order,
            "first_s": round(times[0], 4),
            "warm_median_s": round(statistics.median(times[1:]), 4),
            "rows": rows,
        }
    print(
        json.dumps(
            {
                "runs": n,
                "mlflow": mlflow.__version__,
                "import_s": round(import_s, 2),
                "bulk_load_s": round(load_s, 1),
                "search_runs": results,
            }
        )
    )


def insert(conn: sqlite3.Connection, exp_id: str, batch: list[dict]) -> int:
    runs, params, metrics, latest, tags = [], [], [], [], []
    for r in batch:
        uid = r["id"][:32]
        ms = r["started_ms"]
        runs.append((uid, r["stage"], "UNKNOWN", "", "", "u", "FINISHED", ms, ms + 1000, "", "active", "", int(exp_id)))
        for k, v in r["params"].items():
            params.append((k, str(v), uid))
        for k, v in r["metrics"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                metrics.append((k, float(v), ms, uid, 0, 0))
                latest.append((k, float(v), ms, 0, 0, uid))
        tags += [("pipeline", r["pipeline"], uid), ("stage", r["stage"], uid)]
    conn.executemany(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time,"
        " end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        runs,
    )
    conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
    conn.executemany(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)", metrics
    )
    conn.executemany(
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)", latest
    )
    conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
    return len(runs)


if __name__ == "__main__":
    main()
