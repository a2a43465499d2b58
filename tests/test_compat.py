"""`cmfgit.compat.Cmf`: a CMF script runs unchanged but for its import line, and its metadata is queryable."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3
from cmfdata import (
    MODEL,
    PIPELINE,
    TRAIN,
    WINE,
    assert_cmf_structure,
    by_path,
    copy_inputs,
    graph,
    import_json,
    lineage,
    records,
)
from conftest import CMFLIB_MISSING, CMFLIB_PYTHON, ROOT, cmfgit, git

from cmfgit import cmf_format
from cmfgit.errors import PathError, UsageError
from cmfgit.graph import Node
from cmfgit.query import CmfQuery

PORT = ROOT / "examples" / "cmf_port"
SCRIPTS = [
    ("prepare.py", "artifacts/raw/wine.csv", "artifacts/prepared"),
    ("train.py", "artifacts/prepared", "artifacts/model"),
    ("evaluate.py", "artifacts/model", "artifacts/prepared"),
]
CMF_PYTHON = CMFLIB_PYTHON
IMPORT_LINE = "from cmfgit.compat import Cmf"


def run_python(cwd: Path, *args: str, python: str = sys.executable, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([python, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def run_port(repo: Path) -> None:
    run_python(repo, str(PORT / "make_data.py"))
    for script, *args in SCRIPTS:
        run_python(repo, str(PORT / "src" / script), *args)


def parquet_pandas() -> Any:
    """pandas, for reading compat's parquet files (cmfgit[cmf]: pandas and pyarrow)."""
    pytest.importorskip("pyarrow", reason="compat writes CMF's parquet files: pip install 'cmfgit[cmf]'")
    return pytest.importorskip("pandas")


def md5(path: Path) -> str:
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def b3(path: Path) -> str:
    return "blake3:" + blake3(path.read_bytes()).hexdigest()


def test_scripts_differ_from_cmf_only_in_the_import_line() -> None:
    for script, *_ in SCRIPTS:
        text = (PORT / "src" / script).read_text()
        mentions = [line for line in text.splitlines() if "cmfgit" in line]
        assert mentions == [IMPORT_LINE], script
        original = text.replace(IMPORT_LINE, "from cmflib.cmf import Cmf")
        assert "cmfgit" not in original
        compile(original, script, "exec")


def _stage(found: dict[str, dict[str, Any]], stage: str, site_cmf: bool = False) -> tuple[str, dict[str, Any]]:
    matches = [(rid, r) for rid, r in found.items() if r["stage"] == stage and (r["site"] == "cmf") == site_cmf]
    assert len(matches) == 1, (stage, len(matches))
    return matches[0]


def test_cmf_port_records_queryable_metadata_and_joins_imported_cmf_history(repo: Path, tmp_path: Path) -> None:
    pd = parquet_pandas()
    # History imported from CMF first (bytes absent), then the same pipeline run through cmfgit.compat.
    mlmd_file, _ = copy_inputs(tmp_path / "in")
    import_json(repo, mlmd_file)
    run_port(repo)
    found = records(repo, PIPELINE)
    prep_id, prep = _stage(found, "prepare")
    train_id, train = _stage(found, "train")
    eval_id, evaluate = _stage(found, "evaluate")
    assert {r["exit_code"] for r in (prep, train, evaluate)} == {0}
    assert (prep["type"], train["type"], evaluate["type"]) == ("Prepare", "Train", "Evaluate")

    # Params keep their types: cmflib would have stored 0.25, 0.01 and the updated 0.01 as strings.
    assert prep["params"] == {"split": 0.25, "seed": 7}
    assert train["params"] == {"epochs": 5, "lr": 0.01, "final_lr": 0.01}
    assert isinstance(train["params"]["final_lr"], float)
    assert prep["source"]["cmf"]["stage"] == {"name": "wine-quality/prepare", "custom_properties": {"owner": "team-a"}}
    assert train["metrics"] == {"final_loss": 0.508952}
    assert [step for step, _ in train["step_metrics"]["training_metrics.train_loss"]] == [1, 2, 3, 4, 5]

    # Artifacts, by type, identified by blake3 with CMF's md5 as an alias.
    assert [a["type"] for a in prep["inputs"]] == ["environment", "dataset", "label"]
    assert [a["type"] for a in prep["outputs"]] == ["dataset", "dataset"]
    assert [a["type"] for a in train["inputs"]] == ["environment", "dataset"]
    assert [a["type"] for a in train["outputs"]] == ["step_metrics", "model", "metrics"]
    assert [a["type"] for a in evaluate["inputs"]] == ["environment", "model", "dataset"]
    assert [a["type"] for a in evaluate["outputs"]] == ["dataslice", "metrics"]
    train_csv = by_path(prep, "outputs")["artifacts/prepared/train.csv"]
    assert train_csv["hash"] == b3(repo / "artifacts/prepared/train.csv")
    assert train_csv["aliases"] == [md5(repo / "artifacts/prepared/train.csv")] == [TRAIN]
    wine = by_path(prep, "inputs")["artifacts/raw/wine.csv"]
    assert wine["props"] == {
        "source": "synthetic",
        "rows": 40,
        "labels": "artifacts/labels.csv",
        "labels_uri": "artifacts/labels.csv:4acc5ac0de60a78dbe1f4af4d22dd2d5",
    }
    assert by_path(prep, "inputs")["artifacts/labels.csv"]["props"] == {"annotator": "ron", "dataset_uri": WINE[4:]}
    model = by_path(train, "outputs")["artifacts/model/model.pkl"]
    assert model["source"]["cmf"]["properties"]["model_type"] == "LinearRegression"
    assert model["props"] == {"epochs": 5}

    # Step metrics and the data slice are cmflib's parquet files: no extension, the same frames.
    metrics_file = repo / train["outputs"][0]["path"]
    assert metrics_file.name == "training_metrics" and metrics_file.parent.name == "metrics"
    steps = pd.read_parquet(metrics_file)
    assert steps.index.name == "SequenceNumber" and list(steps.index) == [1, 2, 3, 4, 5]
    assert list(steps.columns) == ["epoch", "train_loss"] and steps["train_loss"].iloc[-1] == 0.508952
    slice_art = evaluate["outputs"][0]
    assert slice_art["props"] == {"n_files": 2}
    sliced = pd.read_parquet(repo / slice_art["path"])
    assert sliced.index.name == "Path" and list(sliced.columns) == ["hash", "role"]
    assert [(p, r["hash"], r["role"]) for p, r in sliced.to_dict("index").items()] == [
        ("artifacts/prepared/test.csv", md5(repo / "artifacts/prepared/test.csv")[4:], "test"),
        ("artifacts/prepared/train.csv", TRAIN[4:], "train"),
    ]

    # Lineage: the model was produced by train from prepare's train.csv, and evaluate read it.
    g = graph(repo)
    model_key = model["hash"]
    assert train_id in g.producers_of(model_key)  # (set1's imported train made the same bytes: see below)
    assert g.consumers_of(model_key) == [eval_id]
    up = g.lineage(Node("execution", eval_id), "up")
    assert {prep_id, train_id} <= up.executions()
    assert b3(repo / "artifacts/raw/wine.csv") in up.artifacts()
    # The same bytes as set1's CMF run: CMF's md5 names them, so the imported history joins in.
    cmf_prep_id, _ = _stage(found, "prepare", site_cmf=True)
    cmf_train_id, _ = _stage(found, "train", site_cmf=True)
    assert g.canonical(TRAIN) == train_csv["hash"]
    assert set(g.producers_of(TRAIN)) == {cmf_prep_id, prep_id}
    assert set(g.producers_of(MODEL)) == {cmf_train_id, train_id}
    # `cmfgit lineage` and the query API show what the script logged.
    execs, arts = lineage(repo, "artifacts/model/model.pkl")
    assert {prep_id, train_id} <= execs and eval_id not in execs
    assert b3(repo / "artifacts/raw/wine.csv") in arts
    assert eval_id in lineage(repo, "artifacts/model/model.pkl", "--down")[0]
    with CmfQuery(repo) as q:
        losses = [r["value"] for r in q.get_step_metrics(train_id) if r["name"] == "training_metrics.train_loss"]
        assert len(losses) == 5 and losses[-1] == 0.508952
        producers = {e["id"] for e in q.find_producer_executions(model_key)}
        assert producers == {cmf_train_id, train_id}
    assert "record(s) ok" in cmfgit(repo, "fsck").stdout

    # What it logged exports in CMF's structure.
    document = json.loads(cmfgit(repo, "export", "-P", PIPELINE).stdout)
    assert_cmf_structure(document)
    exported = {
        e["properties"]["Execution_uuid"]: e for s in document["Pipeline"][0]["stages"] for e in s["executions"]
    }
    assert exported[train["uuid"]]["custom_properties"]["final_lr"] == 0.01
    assert exported[train["uuid"]]["custom_properties"]["Python_Env"].startswith("cmf_artifacts/python_env_")


def test_compat_api_behaviour(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cmfgit.compat import Cmf

    monkeypatch.chdir(repo)
    monkeypatch.setattr(sys, "argv", ["/somewhere/featurize.py", "--fast"])
    with pytest.raises(UsageError, match="is_server"):
        Cmf(filepath="mlmd", pipeline_name="p", is_server=True)
    cmf = Cmf(filepath="mlmd", pipeline_name="p", custom_properties={"team": "a"})
    with pytest.raises(UsageError, match="none is being recorded"):
        cmf.update_execution(1, {"x": 1})
    (repo / "data.csv").write_text("a,b\n1,2\n")
    # Like cmflib, logging without a context or execution creates both, named after the script.
    art = cmf.log_dataset("data.csv", "INPUT", custom_properties={"k": "v"})
    assert cmf.child_context is not None and cmf.child_context.name == "p/featurize"
    assert cmf.execution is not None and cmf.execution.type == "featurize"
    assert (art.type, art.uri, art.hash) == ("Dataset", md5(repo / "data.csv")[4:], b3(repo / "data.csv"))
    with pytest.raises(PathError):
        cmf.log_dataset("absent.csv", "input")
    with pytest.raises(UsageError, match="call log_metric"):
        cmf.commit_metrics("nothing")
    first = cmf.finalize()
    assert first is not None and cmf.finalize() == first  # finalize() commits; nothing new, nothing written

    ex = cmf.create_execution(
        "Tune", {"lr": 0.1}, cmd="python tune.py --lr 0.1 --token tok-secret-42", create_new_execution=False
    )
    again = cmf.create_execution("Tune", {"batch": 32}, create_new_execution=False)
    assert again is ex
    with pytest.raises(UsageError, match="current one is"):
        cmf.update_execution(ex.id + 1, {"x": 1})
    cmf.update_execution(ex.id, {"ratio": 0.5, "flag": True, "layers": {"n": 2}})
    cmf.update_context(
        "Pipeline_Stage", "p/featurize", cmf.child_context.id, custom_properties={"gpu": 1.5, "db_password": "pw-99"}
    )
    with pytest.raises(UsageError, match="only this Cmf object's"):
        cmf.update_context("Pipeline_Stage", "q/other", 999)
    cmf.log_execution_metrics("summary", {"auc": 0.9, "note": "text"})
    second = cmf.finalize()
    assert second is not None

    found = records(repo, "p")
    rec = found[second]
    assert rec["params"] == {"lr": 0.1, "batch": 32, "ratio": 0.5, "flag": True, "layers.n": 2}
    assert rec["command"] == ["python", "tune.py", "--lr", "0.1", "--token", "REDACTED"]
    uuids = rec["source"]["cmf"]["execution"]["properties"].pop("Execution_uuid").split(",")
    assert uuids[0] == rec["uuid"] and len(uuids) == 2  # one per create_execution call, as cmflib
    assert rec["source"]["cmf"]["execution"] == {
        "name": "Tune",
        "properties": {"Execution": "python tune.py --lr 0.1 --token REDACTED"},
    }
    assert rec["source"]["cmf"]["stage"]["custom_properties"] == {"gpu": 1.5, "db_password": "REDACTED"}
    stored = b"".join(p.read_bytes() for p in (repo / ".cmf" / "objects").rglob("*.yaml"))
    assert b"tok-secret-42" not in stored and b"pw-99" not in stored
    assert rec["source"]["cmf"]["pipeline"] == {"name": "p", "custom_properties": {"team": "a"}}
    assert rec["metrics"] == {"auc": 0.9}
    metrics_art = rec["outputs"][0]
    assert metrics_art["props"] == {"auc": 0.9, "note": "text"} and metrics_art["kind"] == "external"
    assert metrics_art["hash"] == cmf_format.hash_of_uri(metrics_art["source"]["cmf"]["uri"], "")
    assert found[first]["command"] == ["/somewhere/featurize.py", "--fast"]


def test_open_execution_is_written_when_the_script_ends(repo: Path) -> None:
    (repo / "in.txt").write_text("x\n")
    forgot = textwrap.dedent(
        """
        from cmfgit.compat import Cmf
        def stage():  # the writer goes out of scope without finalize()
            m = Cmf(pipeline_name="p")
            m.create_context("s1")
            m.create_execution("E", {"k": 0.5})
            m.log_dataset("in.txt", "input")
        stage()
        """
    )
    crashed = forgot.replace('"s1"', '"s2"') + "raise SystemExit('boom')\n"
    failed = forgot.replace('"s1"', '"s3"') + "1 / 0\n"
    run_python(repo, "-c", forgot)
    proc = subprocess.run([sys.executable, "-c", failed], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 1 and "ZeroDivisionError" in proc.stderr
    subprocess.run([sys.executable, "-c", crashed], cwd=repo, capture_output=True, text=True)
    by = {r["stage"]: r for r in records(repo, "p").values()}
    assert by["s1"]["exit_code"] == 0 and by["s1"]["params"] == {"k": 0.5}
    assert by["s3"]["exit_code"] == 1 and "ZeroDivisionError" in by["s3"]["error"]
    assert by["s2"]["inputs"][1]["path"] == "in.txt"


def _cmflib_available() -> bool:
    if not CMF_PYTHON.exists() or shutil.which("git") is None:
        return False
    return subprocess.run([str(CMF_PYTHON), "-c", "import cmflib.cmf"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _cmflib_available(), reason=CMFLIB_MISSING)
def test_same_script_under_cmflib_and_cmfgit_gives_the_same_metadata(repo: Path, tmp_path: Path) -> None:
    """The example run by real cmflib (import line swapped back) and by cmfgit.compat export alike."""
    run_port(repo)
    ours = json.loads(cmfgit(repo, "export", "-P", PIPELINE).stdout)

    env = {**os.environ, "PATH": f"{CMF_PYTHON.parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": ""}
    project = tmp_path / "cmfproject"
    project.mkdir()
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    subprocess.run(
        ["cmf", "init", "local", "--path", str(tmp_path / "storage"), "--git-remote-url", str(remote)],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    original = tmp_path / "original"
    shutil.copytree(PORT, original)
    for script, *_ in SCRIPTS:
        path = original / "src" / script
        path.write_text(path.read_text().replace(IMPORT_LINE, "from cmflib.cmf import Cmf"))
    run_python(project, str(original / "make_data.py"), python=str(CMF_PYTHON), env=env)
    for script, *args in SCRIPTS:
        run_python(project, str(original / "src" / script), *args, python=str(CMF_PYTHON), env=env)
    out = project / "exported.json"
    subprocess.run(
        ["cmf", "metadata", "export", "-p", PIPELINE, "-f", "mlmd", "-j", str(out)],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    theirs = json.loads(out.read_text())
    assert_cmf_structure(theirs)

    def essence(document: dict[str, Any]) -> list[Any]:
        """What must agree: stages, execution types and params, and each event's artifact (files by md5)."""
        found = []
        for stage in document["Pipeline"][0]["stages"]:
            for e in stage["executions"]:
                params = {
                    k: cmf_format.restore_float(v)
                    for k, v in e["custom_properties"].items()
                    if k not in cmf_format.NOT_PARAMS
                }
                events = []
                for ev in e["events"]:
                    a = ev["artifact"]
                    same_bytes = a["type"] in ("Dataset", "Model", "Label")  # env, metrics, slices differ by design
                    events.append(
                        (
                            ev["type"],
                            a["type"],
                            a["uri"] if same_bytes else "",
                            a["custom_properties"],
                        )
                    )
                found.append((stage["name"], stage["custom_properties"], e["type"], params, events))
        return found

    assert essence(ours) == essence(theirs)

    # The step metrics and data slice files: cmflib's parquet, read by pandas, hold what cmfgit's hold.
    pd = parquet_pandas()
    for kind, name in (("metrics", "training_metrics"), ("dataslice", "evaluated-files")):
        (their_file,) = project.glob(f"cmf_artifacts/*/{kind}/{name}")
        (our_file,) = repo.glob(f"cmf_artifacts/*/{kind}/{name}")
        mine, real = pd.read_parquet(our_file), pd.read_parquet(their_file)
        assert (mine.index.name, list(mine.columns)) == (real.index.name, list(real.columns))
        assert mine.to_dict("index") == real.to_dict("index"), kind
        assert [str(t) for t in mine.dtypes] == [str(t) for t in real.dtypes]


def test_dataslices_read_update_and_dvc_lock(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pd = parquet_pandas()
    from cmfgit.compat import Cmf

    monkeypatch.chdir(repo)
    for name in ("a.csv", "b.csv"):
        (repo / name).write_text(f"{name}\n")
    cmf = Cmf(filepath="mlmd", pipeline_name="p")
    cmf.create_context(pipeline_stage="slice")
    cmf.create_execution(execution_type="slice")
    ds = cmf.create_dataslice("slice-1")
    ds.add_data("a.csv", {"label": 1, "split": "train"})
    ds.add_data("b.csv", {"label": 0, "split": "test"})
    ds.commit()
    rows = cmf.read_dataslice("slice-1")  # a DataFrame indexed by Path, as cmflib returns
    assert rows.index.name == "Path" and list(rows.columns) == ["hash", "label", "split"]
    assert rows.to_dict("index") == {
        "a.csv": {"hash": md5(repo / "a.csv")[4:], "label": 1, "split": "train"},
        "b.csv": {"hash": md5(repo / "b.csv")[4:], "label": 0, "split": "test"},
    }

    cmf.update_dataslice("slice-1", "b.csv", {"label": 1, "reviewed": True})
    with pytest.raises(UsageError, match="has no record 'c.csv'"):
        cmf.update_dataslice("slice-1", "c.csv", {"label": 1})
    with pytest.raises(UsageError, match="no dataslice named 'other'"):
        cmf.read_dataslice("other")

    (repo / "dvc.lock").write_text("schema: '2.0'\n")
    commit = cmf.log_dvc_lock("dvc.lock")
    assert commit and git(repo, "log", "-1", "--format=%H").strip() == commit
    assert git(repo, "show", "--name-only", "--format=", commit).split() == ["dvc.lock"]
    rid = cmf.finalize()

    (rec,) = [r for i, r in records(repo, "p").items() if i == rid]
    slices = [o for o in rec["outputs"] if o["type"] == "dataslice"]
    assert len(slices) == 2 and slices[0]["path"] == slices[1]["path"]  # both versions, each with its hash
    assert slices[0]["hash"] != slices[1]["hash"]
    assert slices[1]["hash"] == b3(repo / slices[1]["path"])  # the record holds the hash of the file written
    updated = pd.read_parquet(repo / slices[1]["path"]).to_dict("index")
    assert updated["b.csv"]["label"] == 1 and updated["b.csv"]["reviewed"] is True
