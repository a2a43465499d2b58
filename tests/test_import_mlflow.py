"""``cmfgit import mlflow``: stores that real MLflow wrote (a file store and an sqlite
database) become executions, compared run by run with what MLflow's own client reads."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import cmfgit, git

try:
    import importlib.util

    HAVE_MLFLOW = importlib.util.find_spec("mlflow") is not None
except ValueError:  # pragma: no cover
    HAVE_MLFLOW = False

pytestmark = pytest.mark.skipif(not HAVE_MLFLOW, reason="mlflow is not installed (pip install 'cmfgit[test]')")

MLFLOW_ENV = {"MLFLOW_ALLOW_FILE_STORE": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}

# Logs runs with MLflow's public API, then prints what MLflow's client reads back.
MAKE = r"""
import json, os, sys, time
import mlflow
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

uri, workdir = sys.argv[1], sys.argv[2]
os.chdir(workdir)
mlflow.set_tracking_uri(uri)
client = MlflowClient()
commit = "0123456789abcdef0123456789abcdef01234567"

mlflow.set_experiment("wine")
with mlflow.start_run(run_name="baseline") as run:
    mlflow.log_params({"lr": 0.1, "depth": 3, "opt": "adam", "tiny": "1e-3", "mode": "0777",
                       "flag": True, "api_token": "s3cr3t-value-xyz"})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metric("acc", 0.91)
    mlflow.set_tags({"team": "vision", "owner": "ana", "mlflow.source.git.commit": commit,
                     "mlflow.source.git.branch": "main", "odd key": "kept"})
    with open("model.pkl", "wb") as fh:
        fh.write(b"model bytes")
    mlflow.log_artifact("model.pkl")
    os.makedirs("plots", exist_ok=True)
    with open("plots/roc.txt", "w") as fh:
        fh.write("roc")
    mlflow.log_artifacts("plots", artifact_path="plots")
try:
    with mlflow.start_run(run_name="diverged"):
        mlflow.log_param("lr", 10)
        mlflow.log_metric("loss", float("nan"))
        raise ValueError("boom")
except ValueError:
    pass
killed = mlflow.start_run(run_name="stopped")
mlflow.log_metric("loss", 0.5, step=3)
mlflow.end_run(status="KILLED")
gone = mlflow.start_run(run_name="gone")
mlflow.end_run()
client.delete_run(gone.info.run_id)

exp = mlflow.set_experiment("tune")
running = client.create_run(exp.experiment_id, run_name="still-running", tags={"sweep": "7"})
client.log_param(running.info.run_id, "batch", "32")
with mlflow.start_run(run_name="t1"):
    mlflow.log_param("batch", 64)
    mlflow.log_metric("acc", 0.5, step=0)
    mlflow.log_metric("acc", 0.7, step=1)

truth = []
for e in client.search_experiments():
    for r in client.search_runs([e.experiment_id], run_view_type=ViewType.ALL, max_results=1000):
        truth.append({
            "run_id": r.info.run_id, "experiment": e.name, "name": r.info.run_name,
            "status": r.info.status, "start": r.info.start_time, "end": r.info.end_time,
            "lifecycle": r.info.lifecycle_stage, "user": r.info.user_id,
            "params": r.data.params, "metrics": r.data.metrics, "tags": r.data.tags,
            "history": {k: [[m.step, m.value if m.value == m.value else "nan"]
                            for m in client.get_metric_history(r.info.run_id, k)] for k in r.data.metrics},
        })
print(json.dumps(truth))
"""


def make_store(kind: str, workdir: Path) -> tuple[str, list[dict[str, Any]]]:
    """A store MLflow wrote in ``workdir`` (``mlruns`` or ``mlflow.db``): its URI and MLflow's answer."""
    uri = f"file://{workdir / 'mlruns'}" if kind == "file" else f"sqlite:///{workdir / 'mlflow.db'}"
    script = workdir.parent / f"make_{kind}.py"
    script.write_text(MAKE)
    proc = subprocess.run(
        [sys.executable, str(script), uri, str(workdir)],
        capture_output=True,
        text=True,
        env={**os.environ, **MLFLOW_ENV},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return uri, json.loads(proc.stdout.strip().splitlines()[-1])


def _executions(repo: Path) -> dict[str, dict[str, Any]]:
    rows = json.loads(cmfgit(repo, "log", "--json", "-n", "1000").stdout)
    return {r["uuid"]: r for r in rows}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _check_against_mlflow(execs: dict[str, dict[str, Any]], truth: list[dict[str, Any]]) -> None:
    live = [t for t in truth if t["lifecycle"] == "active"]
    assert sorted(execs) == sorted(f"mlflow-{t['run_id']}" for t in live)
    for t in live:
        e = execs[f"mlflow-{t['run_id']}"]
        src = e["source"]["mlflow"]
        assert e["pipeline"] == t["experiment"] and src["run_name"] == t["name"] and src["status"] == t["status"]
        assert e["started_at"][:23] == _ms(t["start"])
        assert (e["ended_at"] or "")[:23] == (_ms(t["end"]) if t["status"] not in ("RUNNING",) else "")
        assert e["exit_code"] == {"FINISHED": 0, "FAILED": 1, "KILLED": 130, "RUNNING": None}[t["status"]]
        assert e["user"] == t["user"]
        # params: MLflow's text, as the value it came from when str() gives it back; secrets redacted
        shown = {k: str(v) for k, v in e["params"].items()}
        expected = {k: ("REDACTED" if k == "api_token" else v) for k, v in t["params"].items()}
        assert shown == expected, (shown, expected)
        # metrics: the latest value of each key; the series when there is more than one step
        assert set(e["metrics"]) == set(t["metrics"])
        for key, value in t["metrics"].items():
            assert _same(float(e["metrics"][key]), float(value)), (key, e["metrics"][key], value)
        steps = e.get("step_metrics", {})
        for key, history in t["history"].items():
            if len(history) > 1 or history[0][0] != 0:
                got = [[s, "nan" if v != v else v] for s, v in steps[key]]
                assert got == history, (key, got, history)
            else:
                assert key not in steps
        user_tags = {k: v for k, v in t["tags"].items() if not k.startswith("mlflow.") and " " not in k}
        assert e["tags"] == user_tags
        kept = {k: v for k, v in t["tags"].items() if k not in user_tags}
        assert src.get("tags", {}) == kept
        if "mlflow.source.git.commit" in t["tags"]:
            assert e["git"]["commit"] == t["tags"]["mlflow.source.git.commit"] and e["git"]["branch"] == "main"


def _ms(ms: int | None) -> str:
    from datetime import datetime, timezone

    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_a_real_mlflow_store_imports_run_for_run(repo: Path, tmp_path: Path, kind: str) -> None:
    # the file store lies inside the repository (artifacts at their paths there), the database outside
    workdir = repo if kind == "file" else tmp_path / "elsewhere"
    workdir.mkdir(exist_ok=True)
    uri, truth = make_store(kind, workdir)
    assert len(truth) == 6 and sum(t["lifecycle"] == "deleted" for t in truth) == 1
    out = json.loads(cmfgit(repo, "import", "mlflow", uri, "--json").stdout)
    assert out["store"] == kind and out["runs"] == 5 and out["written"] == 5 and out["deleted"] == 1, out
    assert out["pipelines"] == {"wine": 3, "tune": 2} and out["experiments"] == 3, out  # with Default
    assert out["tags"] == 2  # baseline (team, owner) and still-running (sweep)
    execs = _executions(repo)
    _check_against_mlflow(execs, truth)
    baseline = next(e for e in execs.values() if e["source"]["mlflow"]["run_name"] == "baseline")
    assert baseline["stage"] == f"make_{kind}" and baseline["params"]["lr"] == 0.1
    assert baseline["params"]["depth"] == 3 and baseline["params"]["flag"] is True
    assert baseline["params"]["tiny"] == "1e-3" and baseline["params"]["mode"] == "0777"
    outs = {a["source"]["mlflow"]["artifact_path"]: a for a in baseline["outputs"]}
    assert sorted(outs) == ["model.pkl", "plots"]
    assert outs["model.pkl"]["type"] == "model" and outs["plots"]["kind"] in ("dir", "external")
    import blake3

    assert outs["model.pkl"]["hash"] == "blake3:" + blake3.blake3(b"model bytes").hexdigest()
    if kind == "file":  # inside the repository: the artifact's path there
        rid = baseline["source"]["mlflow"]["run_id"]
        assert outs["model.pkl"]["kind"] == "file" and outs["model.pkl"]["path"].startswith("mlruns/")
        assert outs["model.pkl"]["path"].endswith(f"/{rid}/artifacts/model.pkl")
        assert outs["plots"]["props"] == {"files": 1}
    else:
        assert outs["model.pkl"]["kind"] == "external" and outs["model.pkl"]["path"] == "model.pkl"
    failed = next(e for e in execs.values() if e["source"]["mlflow"]["run_name"] == "diverged")
    assert failed["error"] == "MLflow status FAILED" and math.isnan(float(failed["metrics"]["loss"]))
    # lineage and queries work on what was imported
    hits = json.loads(cmfgit(repo, "log", "--json", "--where", "params.batch > 40").stdout)
    assert [h["source"]["mlflow"]["run_name"] for h in hits] == ["t1"]
    tagged = json.loads(cmfgit(repo, "log", "--json", "--where", 'tags.team == "vision"').stdout)
    assert [h["id"] for h in tagged] == [baseline["id"]]
    # a secret never reaches a record
    assert "s3cr3t-value-xyz" not in "".join(p.read_text() for p in (repo / ".cmf" / "objects").rglob("*.yaml"))

    # without SOURCE: ./mlruns (the file store is in the repository), else ./mlflow.db, else MLFLOW_TRACKING_URI
    where = () if kind == "file" else (uri,)
    again = json.loads(cmfgit(repo, "import", "mlflow", *where, "--json").stdout)
    assert again["written"] == 0 and again["present"] == 5 and again["tags"] == 0, again
    assert _executions(repo) == execs
    # the records go in with a commit like any others
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "import mlflow")
    assert cmfgit(repo, "fsck").returncode == 0
    assert git(repo, "status", "--porcelain", "--", ".cmf") == ""


def test_import_mlflow_by_path_and_one_experiment(repo: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "proj"
    workdir.mkdir()
    _uri, truth = make_store("sqlite", workdir)
    out = cmfgit(repo, "import", "mlflow", str(workdir / "mlflow.db"), "-P", "tune", "--no-artifacts").stdout
    assert "2 run(s) of experiment(s) tune (2)" in out and "2 new" in out, out
    assert sorted(e["pipeline"] for e in _executions(repo).values()) == ["tune", "tune"]
    # a missing experiment is an error
    missing = cmfgit(repo, "import", "mlflow", str(workdir / "mlflow.db"), "-P", "nope", check=False)
    assert missing.returncode != 0 and "no run of an experiment named 'nope'" in missing.stderr
    assert len(truth) == 6


def test_bad_mlflow_sources_are_one_line_errors_and_write_nothing(repo: Path, tmp_path: Path) -> None:
    not_db = tmp_path / "notes.txt"
    not_db.write_text("hello\n")
    empty_db = tmp_path / "empty.db"
    sqlite3.connect(empty_db).execute("CREATE TABLE t(x)").connection.commit()
    odd_db = tmp_path / "odd.db"
    conn = sqlite3.connect(odd_db)
    for table in ("experiments(experiment_id, name, lifecycle_stage)", "params(run_uuid, key, value)",
                  "tags(run_uuid, key, value)", "metrics(run_uuid, key, value, timestamp, step, is_nan)",
                  "runs(run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time,"
                  " end_time, lifecycle_stage, artifact_uri, experiment_id)"):  # fmt: skip
        conn.execute(f"CREATE TABLE {table}")
    conn.execute("INSERT INTO experiments VALUES (1, 'e', 'active')")
    conn.execute("INSERT INTO runs VALUES ('r', 'n', 'LOCAL', '', '', 'u', 'FINISHED', 1, 2, 'active', '', 1)")
    conn.execute("INSERT INTO metrics VALUES ('r', 'loss', NULL, 1, 0, 0)")
    conn.commit()
    conn.close()
    bad_store = tmp_path / "mlruns"
    (bad_store / "1" / "abc").mkdir(parents=True)
    (bad_store / "1" / "meta.yaml").write_text("name: exp\nexperiment_id: '1'\n")
    (bad_store / "1" / "abc" / "meta.yaml").write_text("run_id: abc\nstatus: [unclosed\n")
    linked = tmp_path / "linked" / "mlruns"
    (linked / "1" / "r1" / "params").mkdir(parents=True)
    (linked / "1" / "meta.yaml").write_text("name: exp\nexperiment_id: '1'\n")
    (linked / "1" / "r1" / "meta.yaml").write_text("run_id: r1\nexperiment_id: '1'\nstatus: 3\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2-very-secret\n")
    (linked / "1" / "r1" / "params" / "pw").symlink_to(secret)
    fifo = tmp_path / "fifo" / "mlruns"
    (fifo / "1" / "r1" / "tags").mkdir(parents=True)
    (fifo / "1" / "meta.yaml").write_text("name: exp\nexperiment_id: '1'\n")
    (fifo / "1" / "r1" / "meta.yaml").write_text("run_id: r1\nexperiment_id: '1'\nstatus: 3\n")
    os.mkfifo(fifo / "1" / "r1" / "tags" / "t")
    cases = {
        str(linked): "is a symbolic link",
        str(fifo): "is not a regular file",
        str(tmp_path / "nowhere"): "does not exist",
        str(not_db): "not an MLflow store",
        str(empty_db): "not an MLflow database",
        str(odd_db): "holds a value MLflow's schema does not allow",
        str(bad_store): "not valid YAML",
        "http://127.0.0.1:5000": "only an MLflow file store",
        str(tmp_path / "plain"): "not an MLflow file store",
    }
    (tmp_path / "plain").mkdir()
    before = sorted((repo / ".cmf").rglob("*"))
    for source, message in cases.items():
        proc = cmfgit(repo, "import", "mlflow", source, check=False)
        assert proc.returncode != 0, source
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (source, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert sorted((repo / ".cmf").rglob("*")) == before
    wrong = cmfgit(repo, "import", "mlflow", str(not_db), "--all-commits", check=False)
    assert wrong.returncode == 2 and "--all-commits goes with 'cmfgit import dvc'" in wrong.stderr
    # Each option misplaced on a CMF import is named, as on the other importers.
    for args, said in (
        (["--no-artifacts"], "--no-artifacts goes with 'cmfgit import mlflow'"),
        (["--all-commits"], "--all-commits goes with 'cmfgit import dvc'"),
        (["extra"], "SOURCE goes with 'cmfgit import dvc' or 'cmfgit import mlflow'"),
    ):
        misplaced = cmfgit(repo, "import", str(not_db), *args, check=False)
        assert misplaced.returncode == 2 and said in misplaced.stderr, args
        assert len(misplaced.stderr.strip().splitlines()) == 1


def test_the_two_worker_path_writes_the_same_records_and_reports_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From PARALLEL_MIN runs two forked workers read and encode: the same records as one
    process, and a damaged run's error comes back as the same one-line error."""
    from conftest import make_repo

    from cmfgit.errors import CmfgitError
    from cmfgit.importers import mlflow as importer
    from cmfgit.repo import open_repo
    from cmfgit.store import Store

    workdir = tmp_path / "store"
    workdir.mkdir()
    uri, _truth = make_store("file", workdir)
    reports = {}
    for name, least in (("alone", 10**9), ("workers", 2)):
        monkeypatch.setattr(importer, "PARALLEL_MIN", least)
        repo = make_repo(tmp_path / name)
        reports[name] = importer.import_mlflow(open_repo(repo), uri)
    alone, workers = reports["alone"], reports["workers"]
    assert alone.ids == workers.ids and len(alone.ids) == 5
    assert (alone.written, alone.tags, alone.deleted, alone.artifacts) == (5, 2, 1, 2)
    assert (workers.written, workers.tags, workers.deleted, workers.artifacts) == (5, 2, 1, 2)
    read = {name: sorted(r.id for r in Store(tmp_path / name / ".cmf/objects").iter_records()) for name in reports}
    assert read["alone"] == read["workers"] and len(read["alone"]) == 7  # 5 runs, 2 tag annotations

    run_dir = next(p for p in (workdir / "mlruns").glob("*/*/meta.yaml") if "baseline" in p.read_text())
    (run_dir.parent / "metrics" / "loss").write_text("not a metric line\n")
    monkeypatch.setattr(importer, "PARALLEL_MIN", 2)
    repo = make_repo(tmp_path / "damaged")
    before = sorted((repo / ".cmf").rglob("*"))
    with pytest.raises(CmfgitError, match="not an MLflow metric line"):
        importer.import_mlflow(open_repo(repo), uri)
    assert sorted((repo / ".cmf").rglob("*")) == before
