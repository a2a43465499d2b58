"""In-process timings for bench_ui.py, run with the bench venv's python (cmfgit importable).

    ui_worker.py build REPO                 # open the query index (built if missing): time, size
    ui_worker.py api REPO SPECS REPEATS     # the runs API's payload (cmfgit.ui.api.runs + JSON) per spec
    ui_worker.py export REPO OUT            # the runs as JSON lines, for MLflow's loader (bench/mlflow_ui.py)

SPECS is a JSON list of {"label", "where", "sort", "offset"}. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any


def index_file(repo: str) -> Path:
    from cmfgit.index import CHECKOUT, index_path
    from cmfgit.repo import open_read_repo

    return index_path(open_read_repo(repo), CHECKOUT)


def build(repo: str) -> dict[str, Any]:
    path = index_file(repo)
    existed = path.exists()
    t0 = time.perf_counter()
    from cmfgit.query import CmfQuery

    with CmfQuery(repo, warn=False) as q:
        took = time.perf_counter() - t0
        (n,) = q.db.execute("SELECT count(*) FROM executions").fetchone()
    return {"built": not existed, "open_s": round(took, 3), "index_bytes": path.stat().st_size, "executions": n}


def api(repo: str, specs: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    from cmfgit.query import CmfQuery
    from cmfgit.ui import api as ui_api

    out: dict[str, Any] = {}
    with CmfQuery(repo, warn=False) as q:
        for spec in specs:
            kwargs = {"where": spec.get("where"), "sort": spec.get("sort"), "offset": spec.get("offset", 0)}

            def payload(kwargs: dict[str, Any] = kwargs) -> tuple[int, int]:
                body = ui_api.runs(q, **kwargs)
                return len(json.dumps(body)), int(body["total"])

            def timed(clear: bool, kwargs: dict[str, Any] = kwargs) -> list[float]:
                samples = []
                for _ in range(repeats):
                    if clear:
                        q._counts.clear()  # the count computed again, as for a new expression
                    t0 = time.perf_counter()
                    payload(kwargs)
                    samples.append(time.perf_counter() - t0)
                return samples

            q._counts.clear()
            t0 = time.perf_counter()
            size, total = payload()  # the first time: SQLite's pages and the records' files may be cold
            first = time.perf_counter() - t0
            kept, fresh = timed(False), timed(True)
            # The two index questions alone: the page's rowids and the count.
            rowid_s = []
            count_s = []
            where, sort, offset = kwargs["where"], kwargs["sort"], kwargs["offset"]
            for _ in range(repeats):
                t0 = time.perf_counter()
                q.execution_rowids(where, sort=sort, limit=50, offset=offset)
                t1 = time.perf_counter()
                q._counts.clear()
                q.count_executions(where)
                rowid_s.append(t1 - t0)
                count_s.append(time.perf_counter() - t1)
            out[spec["label"]] = {
                **spec,
                "total": total,
                "bytes": size,
                "first_s": round(first, 5),
                "warm_median_s": round(statistics.median(kept), 5),
                "warm_min_s": round(min(kept), 5),
                "count_recomputed_median_s": round(statistics.median(fresh), 5),
                "rowids_median_s": round(statistics.median(rowid_s), 5),
                "count_median_s": round(statistics.median(count_s), 5),
            }
    return out


def export(repo: str, path: str) -> dict[str, Any]:
    from cmfgit.query import CmfQuery

    n = 0
    with open(path, "w", encoding="utf-8") as fh, CmfQuery(repo, warn=False) as q:
        rows = q.db.execute(
            "SELECT r.id, e.pipeline, e.stage, e.started_at, e.params, e.metrics "
            "FROM executions e JOIN records r ON r.rowid = e.rowid"
        )
        for rid, pipeline, stage, started, params, metrics in rows:
            ms = int(datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() * 1000)
            line = {"id": rid, "pipeline": pipeline, "stage": stage, "started_ms": ms}
            line.update(params=json.loads(params or "{}"), metrics=json.loads(metrics or "{}"))
            fh.write(json.dumps(line) + "\n")
            n += 1
    return {"runs": n, "bytes": os.path.getsize(path)}


def main() -> None:
    mode, repo = sys.argv[1], sys.argv[2]
    if mode == "build":
        result = build(repo)
    elif mode == "api":
        result = api(repo, json.loads(sys.argv[3]), int(sys.argv[4]))
    elif mode == "export":
        result = export(repo, sys.argv[3])
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
