"""MLflow's tracking server over the same runs as the cmfgit UI benchmark (bench_ui.py).

Run with MLflow's Python:

    /opt/peers/mlflow/bin/python bench/mlflow_ui.py RUNS.jsonl WORKDIR [--repeats 15] [--keep-server]

RUNS.jsonl is what bench_ui.py writes (one run a line: {"id", "started_ms", "pipeline",
"stage", "params", "metrics"}). The runs are bulk-inserted into an sqlite tracking store
that MLflow created (its schema, its migrations; bench/mlflow_search.py's loader), once:
WORKDIR/mlflow.db is reused while WORKDIR/loaded.json says it holds the same runs. Then
``mlflow server`` is started on 127.0.0.1 and its runs search API (what its UI's runs table
calls), ``POST /api/2.0/mlflow/runs/search``, is timed over HTTP: the first page (50 runs,
newest first) and filtered pages. ``--keep-server`` leaves it running and prints its URL
and pid (bench_ui.py then opens its UI in Chromium and stops it). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlflow_search import insert  # noqa: E402

# The same questions as bench_ui.py asks cmfgit, in MLflow's filter language.
QUERIES = {
    "first page": "",
    "pipeline and stage": "tags.pipeline = 'pipe03' and tags.stage = 'evaluate'",
    "metric range": "metrics.acc > 0.8",
    "param and metric": "params.optimizer = 'adam' and metrics.loss < 0.3",
}
PAGE = 50


def load(runs_path: Path, workdir: Path) -> tuple[str, str, dict]:
    """(database path, experiment id, load facts); loads the runs unless already there."""
    import mlflow

    db = workdir / "mlflow.db"
    marker = workdir / "loaded.json"
    size = runs_path.stat().st_size
    if db.exists() and marker.exists():
        facts = json.loads(marker.read_text())
        if facts.get("runs_bytes") == size:
            return str(db), facts["experiment_id"], {**facts, "reused": True}
    if db.exists():
        db.unlink()
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
    facts = {"runs": n, "runs_bytes": size, "experiment_id": exp_id, "bulk_load_s": round(time.perf_counter() - t0, 1)}
    marker.write_text(json.dumps(facts))
    return str(db), exp_id, {**facts, "reused": False, "db_bytes": db.stat().st_size}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: str, workdir: Path) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    # Its job runner (huey consumers for GenAI scorers) takes 8 processes and has no part in search.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    log = open(workdir / "server.log", "w")  # noqa: SIM115 (the server's, closed with it)
    argv = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}"]
    argv += ["--default-artifact-root", str(workdir / "artifacts"), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", "1"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"mlflow server exited {proc.returncode}: {(workdir / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url, time.perf_counter() - t0
        except OSError:
            time.sleep(0.3)
    stop(proc)
    raise SystemExit("mlflow server did not answer /health within 180 s")


def stop(proc: subprocess.Popen) -> None:
    """The server and every process it started (its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # workers that outlived it
    except ProcessLookupError:
        pass
    proc.wait()


def search(url: str, exp_id: str, filt: str) -> tuple[float, int, int]:
    """(seconds, runs returned, response bytes) of one runs/search round trip."""
    body = {"experiment_ids": [exp_id], "max_results": PAGE, "order_by": ["attributes.start_time DESC"]}
    if filt:
        body["filter"] = filt
    data = json.dumps(body).encode()
    req = urllib.request.Request(
        url + "/api/2.0/mlflow/runs/search", data=data, headers={"Content-Type": "application/json"}
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        payload = r.read()
    took = time.perf_counter() - t0
    return took, len(json.loads(payload).get("runs", [])), len(payload)


def main() -> None:
    runs_path, workdir = Path(sys.argv[1]), Path(sys.argv[2])
    repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 15
    keep = "--keep-server" in sys.argv
    workdir.mkdir(parents=True, exist_ok=True)
    load_avg = [round(x, 2) for x in os.getloadavg()]
    db, exp_id, facts = load(runs_path, workdir)
    import mlflow

    proc, url, start_s = start_server(db, workdir)
    results = {}
    try:
        for name, filt in QUERIES.items():
            first, rows, size = search(url, exp_id, filt)
            times = [search(url, exp_id, filt)[0] for _ in range(repeats)]
            results[name] = {
                "filter": filt,
                "first_s": round(first, 4),
                "warm_median_s": round(statistics.median(times), 4),
                "warm_min_s": round(min(times), 4),
                "rows": rows,
                "bytes": size,
            }
    finally:
        if not keep:
            stop(proc)
    out = {
        "mlflow": mlflow.__version__,
        "load": facts,
        "server_start_s": round(start_s, 2),
        "search": results,
        "loadavg_start": load_avg,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
    if keep:
        out.update(url=url, pid=proc.pid, experiment_id=exp_id)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
