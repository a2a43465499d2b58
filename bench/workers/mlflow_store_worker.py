"""Makes two MLflow stores of N runs each (a file store and an sqlite database), then times
MLflow's own ``MlflowClient.search_runs`` reading every run back. Run with MLflow's Python
(bench/bench_mlflow_import.py does):

    /opt/peers/mlflow/bin/python bench/workers/mlflow_store_worker.py N WORKDIR [--repeat R]

Logging N runs through MLflow's API costs about 50 ms a run here (10,000 runs: 8 minutes
per store), so MLflow logs one template run per store itself, and the other runs are
written in exactly its layout: for the file store, run directories with the template's
meta.yaml keys and one file per param, tag and metric; for the database, rows in the
tables MLflow's migrations created. Every run has 10 params, 5 metrics (``loss`` at 20
steps), 3 user tags and MLflow's 5 system tags. ``search_runs`` must then give back N+1
runs (the template too), which checks that MLflow reads what was written.
Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import sys
import time
import uuid

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def run_values(i: int, rng: random.Random) -> tuple[dict[str, str], dict[str, list[tuple[float, int]]], dict[str, str]]:
    params = {
        "lr": str(rng.choice([0.1, 0.03, 0.01, 0.003])),
        "depth": str(rng.randint(2, 12)),
        "optimizer": rng.choice(["adam", "sgd", "rmsprop"]),
        "seed": str(i),
        "batch": str(rng.choice([16, 32, 64, 128])),
        "dropout": str(rng.choice([0.0, 0.1, 0.2, 0.5])),
        "epochs": "20",
        "weight_decay": str(rng.choice([0.0, 1e-4, 1e-3])),
        "momentum": "0.9",
        "layers": str(rng.randint(1, 6)),
    }
    loss = [(round(2.0 / (s + 1) + rng.random() * 0.05, 6), s) for s in range(20)]
    metrics = {"loss": loss}
    for key in ("acc", "f1", "precision", "recall"):
        metrics[key] = [(round(rng.random(), 6), 0)]
    tags = {
        "team": rng.choice(["vision", "nlp", "tabular"]),
        "owner": rng.choice(["ana", "bo", "cy"]),
        "sweep": str(i // 100),
        "mlflow.runName": f"run-{i}",
        "mlflow.user": "bench",
        "mlflow.source.name": "train.py",
        "mlflow.source.type": "LOCAL",
        "mlflow.source.git.commit": COMMIT,
    }
    return params, metrics, tags


def template(mlflow: object, uri: str) -> tuple[str, str]:
    import mlflow as ml

    ml.set_tracking_uri(uri)
    exp = ml.set_experiment("bench")
    params, metrics, tags = run_values(-1, random.Random(0))
    with ml.start_run(run_name="template") as run:
        ml.log_params(params)
        for key, series in metrics.items():
            for value, step in series:
                ml.log_metric(key, value, step=step)
        ml.set_tags({k: v for k, v in tags.items() if k != "mlflow.runName"})
    return exp.experiment_id, run.info.run_id


def fill_file_store(root: str, exp_id: str, template_id: str, n: int) -> None:
    import yaml

    exp_dir = os.path.join(root, exp_id)
    with open(os.path.join(exp_dir, template_id, "meta.yaml")) as fh:
        meta = yaml.safe_load(fh)
    rng = random.Random(1)
    start = int(time.time() * 1000) - n * 1000
    for i in range(n):
        rid = uuid.uuid4().hex
        run_dir = os.path.join(exp_dir, rid)
        os.makedirs(run_dir)
        params, metrics, tags = run_values(i, rng)
        began = start + i * 1000
        doc = dict(meta)
        doc.update(
            run_id=rid,
            run_uuid=rid,
            run_name=f"run-{i}",
            start_time=began,
            end_time=began + 900,
            artifact_uri=meta["artifact_uri"].replace(template_id, rid),
        )
        if "run_uuid" not in meta:
            doc.pop("run_uuid")
        with open(os.path.join(run_dir, "meta.yaml"), "w") as fh:
            yaml.safe_dump(doc, fh, default_flow_style=False)
        for sub, values in (("params", params), ("tags", tags)):
            os.makedirs(os.path.join(run_dir, sub))
            for key, value in values.items():
                with open(os.path.join(run_dir, sub, key), "w") as fh:
                    fh.write(value)
        os.makedirs(os.path.join(run_dir, "metrics"))
        for key, series in metrics.items():
            with open(os.path.join(run_dir, "metrics", key), "w") as fh:
                fh.write("".join(f"{began + s * 10} {v} {s}\n" for v, s in series))
        os.makedirs(os.path.join(run_dir, "artifacts"))


def fill_sqlite(db: str, exp_id: str, n: int) -> None:
    conn = sqlite3.connect(db)
    rng = random.Random(1)
    start = int(time.time() * 1000) - n * 1000
    runs, params, metrics, latest, tags = [], [], [], [], []
    for i in range(n):
        rid = uuid.uuid4().hex
        p, m, t = run_values(i, rng)
        began = start + i * 1000
        runs.append((rid, f"run-{i}", "LOCAL", "train.py", "", "bench", "FINISHED", began, began + 900, "",
                     "active", f"/nonexistent/{exp_id}/{rid}/artifacts", int(exp_id)))  # fmt: skip
        params += [(k, v, rid) for k, v in p.items()]
        tags += [(k, v, rid) for k, v in t.items()]
        for key, series in m.items():
            metrics += [(key, v, began + s * 10, rid, s, 0) for v, s in series]
            v, s = series[-1]
            latest.append((key, v, began + s * 10, s, 0, rid))
    conn.executemany(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time,"
        " end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        runs,
    )
    conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
    conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
    conn.executemany(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)", metrics
    )
    conn.executemany(
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)", latest
    )
    conn.commit()
    conn.close()


def search_all(uri: str, exp_id: str, expect: int, repeat: int) -> dict[str, object]:
    """Wall seconds of MLflow's client reading every run (params, metrics, tags) of the store."""
    from mlflow.tracking import MlflowClient

    times = []
    for _ in range(repeat):
        client = MlflowClient(tracking_uri=uri)
        t0 = time.perf_counter()
        got, token = 0, None
        while True:
            page = client.search_runs([exp_id], max_results=50000, page_token=token)
            got += len(page)
            token = page.token
            if not token:
                break
        times.append(time.perf_counter() - t0)
        if got != expect:
            raise SystemExit(f"search_runs gave {got} runs, not {expect}")
    return {"runs": got, "median_s": round(statistics.median(times), 3), "all_s": [round(t, 3) for t in times]}


def main() -> None:
    n, workdir = int(sys.argv[1]), sys.argv[2]
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
    import mlflow

    out: dict[str, object] = {"mlflow": mlflow.__version__, "runs": n}
    os.chdir(workdir)
    for kind in ("file", "sqlite"):
        uri = f"file://{workdir}/mlruns" if kind == "file" else f"sqlite:///{workdir}/mlflow.db"
        t0 = time.perf_counter()
        exp_id, template_id = template(mlflow, uri)
        if kind == "file":
            fill_file_store(os.path.join(workdir, "mlruns"), exp_id, template_id, n)
        else:
            fill_sqlite(os.path.join(workdir, "mlflow.db"), exp_id, n)
        made = round(time.perf_counter() - t0, 1)
        out[kind] = {"uri": uri, "make_s": made, "search_runs": search_all(uri, exp_id, n + 1, repeat)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
