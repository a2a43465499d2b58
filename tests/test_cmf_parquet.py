"""Step metrics and data slices are cmflib's parquet files, read back by cmflib's readers (issue 14 item 5).

cmflib 0.1 writes ``cmf_artifacts/<execution uuid>/metrics/<name>`` (``commit_metrics``) and
``cmf_artifacts/<execution uuid>/dataslice/<name>`` (``DataSlice.commit``) with pandas'
``to_parquet``, no extension; so does ``cmfgit.compat``. Without pyarrow the call fails
with one line and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from blake3 import blake3
from cmfdata import records
from conftest import cmfgit

SCRIPT = """
from cmflib import cmf

metawriter = cmf.Cmf(filepath="mlmd", pipeline_name="Test-env")
_ = metawriter.create_context(pipeline_stage="Train")
_ = metawriter.create_execution(execution_type="Train", custom_properties={"seed": 1})
for loss in (0.5, 0.25, 0.125):
    metawriter.log_metric("training_metrics", {"train_loss": loss, "ok": True})
@METRICS@
dataslice: cmf.Cmf.DataSlice = metawriter.create_dataslice("slice-1")
dataslice.add_data("artifacts/raw_data/a.txt", {"key1": "value1", "n": 1})
dataslice.add_data("artifacts/raw_data/b.txt", {"key1": "value2", "n": 2})
@COMMIT@
metawriter.finalize()
"""
COMMIT_METRICS = '_ = metawriter.commit_metrics("training_metrics")'
COMMIT_SLICE = "dataslice.commit()"
COMPAT_IMPORT = "from cmfgit import compat as cmf"

# Makes pyarrow (and pandas' other parquet engine) unimportable, as on a machine without them.
BLOCKER = """
import sys

class _NoParquet:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pyarrow", "fastparquet"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None

sys.meta_path.insert(0, _NoParquet())
"""


def script(metrics: str, commit: str) -> str:
    return SCRIPT.replace("@METRICS@", metrics).replace("@COMMIT@", commit)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_inputs(repo: Path) -> None:
    for name, data in (("a.txt", b"first\n"), ("b.txt", b"second\n")):
        (repo / "artifacts/raw_data").mkdir(parents=True, exist_ok=True)
        (repo / "artifacts/raw_data" / name).write_bytes(data)


def run(repo: Path, script: str, blocked: Path | None = None, *extra: str) -> subprocess.CompletedProcess[str]:
    (repo / "train.py").write_text(script.replace("from cmflib import cmf", COMPAT_IMPORT))
    env = dict(os.environ)
    if blocked is not None:  # sitecustomize runs before the script: pyarrow is gone for the whole process
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(blocked), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "train.py", *extra], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )


def blocker(tmp_path: Path) -> Path:
    shim = tmp_path / "no-pyarrow"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(BLOCKER)
    return shim


def test_step_metrics_and_dataslices_are_cmflibs_parquet_files(repo: Path) -> None:
    pytest.importorskip("pyarrow", reason="compat writes CMF's parquet files: pip install 'cmfgit[cmf]'")
    import pandas as pd

    from cmfgit.query import CmfQuery

    write_inputs(repo)
    proc = run(repo, script(COMMIT_METRICS, COMMIT_SLICE))
    assert proc.returncode == 0, proc.stderr
    (rec,) = records(repo, "Test-env").values()
    uuid = rec["uuid"]
    steps, sliced = [a for a in rec["outputs"] if a["type"] in ("step_metrics", "dataslice")]

    # cmflib's paths: cmf_artifacts/<execution uuid>/{metrics,dataslice}/<name>, no extension.
    assert steps["path"] == f"cmf_artifacts/{uuid}/metrics/training_metrics"
    assert sliced["path"] == f"cmf_artifacts/{uuid}/dataslice/slice-1"
    for art in (steps, sliced):
        data = (repo / art["path"]).read_bytes()
        assert data[:4] == b"PAR1" and data[-4:] == b"PAR1"  # parquet, as pandas' to_parquet writes
        assert art["hash"] == "blake3:" + blake3(data).hexdigest()  # the record holds the file written
        assert art["kind"] == "file"

    # The frames cmflib writes: DataFrame.from_dict(..., orient="index") with its index named.
    frame = pd.read_parquet(repo / steps["path"])
    assert frame.index.name == "SequenceNumber" and list(frame.index) == [1, 2, 3]
    assert list(frame.columns) == ["train_loss", "ok"]
    assert frame["train_loss"].tolist() == [0.5, 0.25, 0.125] and frame["ok"].tolist() == [True] * 3
    table = pd.read_parquet(repo / sliced["path"])
    assert table.index.name == "Path" and list(table.columns) == ["hash", "key1", "n"]
    assert table.to_dict("index") == {
        "artifacts/raw_data/a.txt": {"hash": md5(repo / "artifacts/raw_data/a.txt"), "key1": "value1", "n": 1},
        "artifacts/raw_data/b.txt": {"hash": md5(repo / "artifacts/raw_data/b.txt"), "key1": "value2", "n": 2},
    }

    # The export names them as cmflib does; CmfQuery reads the files back by those names.
    doc = json.loads(cmfgit(repo, "export", "--format", "cmf-json", "-P", "Test-env").stdout)
    (execution,) = doc["Pipeline"][0]["stages"][0]["executions"]
    names = {ev["artifact"]["type"]: ev["artifact"]["name"] for ev in execution["events"]}
    steps_md5, slice_md5 = md5(repo / steps["path"]), md5(repo / sliced["path"])
    assert re.fullmatch(rf"{steps['path']}:{steps_md5}:{execution['id']}:[0-9a-f-]{{36}}", names["Step_Metrics"])
    assert names["Dataslice"] == f"{sliced['path']}:{slice_md5}"
    q = CmfQuery(str(repo / "mlmd"))
    assert q.get_metrics(names["Step_Metrics"]).equals(frame)
    assert CmfQuery.read_dataslice(str(repo / sliced["path"])).equals(table)


def test_compat_returns_cmflibs_step_metrics_name(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyarrow", reason="compat writes CMF's parquet files: pip install 'cmfgit[cmf]'")
    from cmfgit.compat import Cmf

    monkeypatch.chdir(repo)
    cmf = Cmf(filepath="mlmd", pipeline_name="p")
    cmf.create_context(pipeline_stage="s")
    exe = cmf.create_execution(execution_type="t")
    cmf.log_metric("loss", {"v": 1.0})
    art = cmf.commit_metrics("loss")
    path, md5, eid, uuid = art.name.split(":")
    assert path.endswith("/metrics/loss") and len(md5) == 32 and eid == str(exe.id) and len(uuid) == 36
    assert art.type == "Step_Metrics"
    cmf.finalize()


@pytest.mark.parametrize("which", ["commit_metrics", "DataSlice.commit"])
def test_without_pyarrow_the_call_fails_in_one_line_and_writes_nothing(repo: Path, tmp_path: Path, which: str) -> None:
    write_inputs(repo)
    metrics, commit = (COMMIT_METRICS, "") if which == "commit_metrics" else ("", COMMIT_SLICE)
    proc = run(repo, script(metrics, commit), blocker(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("cmfgit: error: ") and which in lines[0], lines[0]
    assert "pip install 'cmfgit[cmf]'" in lines[0] and "pyarrow" in lines[0]
    assert re.search(r"\(at train\.py:\d+\)$", lines[0]), lines[0]  # the script's line that made the call
    # Nothing half-written: no table file, and the run (written at exit, as failed) records no table.
    assert [p for p in (repo / "cmf_artifacts").rglob("*") if p.parent.name in ("metrics", "dataslice")] == []
    (rec,) = records(repo, "Test-env").values()
    assert rec["exit_code"] == 1 and which in (rec["error"] or "")
    assert [a["type"] for a in rec["outputs"]] == []


def test_without_pyarrow_the_readers_say_so_in_one_line(repo: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="the files are written with pyarrow first: pip install 'cmfgit[cmf]'")
    write_inputs(repo)
    assert run(repo, script(COMMIT_METRICS, COMMIT_SLICE)).returncode == 0
    (rec,) = records(repo, "Test-env").values()
    steps, sliced = [a["path"] for a in rec["outputs"] if a["type"] in ("step_metrics", "dataslice")]
    doc = json.loads(cmfgit(repo, "export", "--format", "cmf-json", "-P", "Test-env").stdout)
    (name,) = [
        ev["artifact"]["name"]
        for ev in doc["Pipeline"][0]["stages"][0]["executions"][0]["events"]
        if ev["artifact"]["type"] == "Step_Metrics"
    ]
    asks = textwrap.dedent(
        f"""
        from cmfgit.errors import CmfgitError
        from cmfgit.query import CmfQuery
        for ask in (lambda: CmfQuery("mlmd").get_metrics({name!r}), lambda: CmfQuery.read_dataslice({sliced!r})):
            try:
                ask()
            except CmfgitError as exc:
                print(exc)
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(blocker(tmp_path)), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run([sys.executable, "-c", asks], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert (
        "Traceback" not in proc.stderr
        and len(lines) == 2
        and all("pyarrow" in line and "pip install 'cmfgit[cmf]'" in line for line in lines)
    )
    assert lines[0].startswith("get_metrics") and lines[1].startswith("read_dataslice")
    assert (repo / steps).is_file()  # the files are there: what is missing is pyarrow
