"""CMF's example scripts, with only their import lines changed, record what cmflib records (issue 14).

The scripts below are written for these tests in the style of CMF's
example-get-started (the data-slice script, the test stage, the three
execution-update scripts); each is checked to differ from a cmflib script only
in its import lines. Their graph is compared with set3, real cmflib 0.1.0
output of CMF's own scripts (tests/fixtures/cmf-set3/README.txt).
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from cmfdata import graph, records
from conftest import ROOT, cmfgit

from cmfgit import cmf_parts
from cmfgit.graph import Node

SET3 = ROOT / "tests" / "fixtures" / "cmf-set3"
CMFLIB_IMPORTS = ("from cmflib import cmf\n", "from cmflib import cmfquery\n")
COMPAT_IMPORTS = ("from cmfgit import compat as cmf\n", "from cmfgit import query as cmfquery\n")

# -- scripts, as a CMF user writes them (cmflib imports; the tests swap only those lines) --

DATASLICE = """
from cmflib import cmf

metawriter = cmf.Cmf(filepath="mlmd", pipeline_name="Test-env")
_ = metawriter.create_context(pipeline_stage="Prepare")
_ = metawriter.create_execution(execution_type="Prepare")
_ = metawriter.log_dataset("artifacts/raw_data", "input")
dataslice: cmf.Cmf.DataSlice = metawriter.create_dataslice("slice-a")
for name in ("a.txt", "b.txt"):
    dataslice.add_data("artifacts/raw_data/" + name, {"key1": "value1"})
dataslice.commit()
metawriter.finalize()
"""

TRAIN = """
from cmflib import cmf

metawriter = cmf.Cmf(filepath="mlmd", pipeline_name="Test-env")
_ = metawriter.create_context(pipeline_stage="Train")
_ = metawriter.create_execution(execution_type="Train-execution", custom_properties={"seed": 1})
_ = metawriter.log_dataset("artifacts/features/train.pkl", "input")
with open("artifacts/model/model.pkl", "wb") as fh:
    fh.write(b"a model")
_ = metawriter.log_model(path="artifacts/model/model.pkl", event="output", model_framework="sklearn",
                         model_type="RandomForest", model_name="RandomForest_default")
metawriter.finalize()
"""

# The test stage: finalize() first, then the metrics (cmflib's finalize only commits).
EVALUATE = """
import os, sys, time
from cmflib import cmf

metawriter = cmf.Cmf(filepath="mlmd", pipeline_name="Test-env")
_ = metawriter.create_context(pipeline_stage="Evaluate")
_ = metawriter.create_execution(execution_type="Evaluate-execution")
metawriter.log_model(path="artifacts/model/model.pkl", event="input", model_framework="sklearn",
                     model_type="RandomForest", model_name="RandomForest_default")
_ = metawriter.log_dataset("artifacts/features/test.pkl", "input")
metawriter.finalize()
if len(sys.argv) > 1:  # the crash test: stop here until killed
    open(sys.argv[1], "w").close()
    while True:
        time.sleep(0.1)
_ = metawriter.log_execution_metrics("metrics", {"avg_prec": 1.0, "roc_auc": 1.0})
"""

UPDATE = """
from cmflib import cmf
from cmflib import cmfquery

metawriter = cmf.Cmf("mlmd", "test-execution-update")
_ = metawriter.create_context("Train", {"test": "1"})
exe = metawriter.create_execution("Train-execution", create_new_execution=False)
metawriter.update_execution(exe.id, {"new_new": "value_value"})
exe = metawriter.create_execution("Train-execution", create_new_execution=False)
metawriter.update_execution(exe.id, {"new_new_1": "value_value_1"})
"""

UPDATE_METHOD_1 = """
from cmflib import cmf
from cmflib import cmfquery

query = cmfquery.CmfQuery("mlmd")
print(query.get_pipeline_names()[0])
metawriter = cmf.Cmf("mlmd", "test-execution-update")
ctx = metawriter.child_context = metawriter.create_context("Train")
exes = query.get_all_exe_in_stage(ctx.name)
print(exes[0].id, exes[0].name, exes[0].type_id, sorted(exes[0].properties), sorted(exes[0].custom_properties))
for exe in exes:
    if exe.name == "Train-execution":
        execution = exe
metawriter.execution = execution
_ = metawriter.log_dataset("artifacts/data.xml.gz", "input", custom_properties={"user-metadata1": "metadata_value"})
_ = metawriter.log_execution_metrics("metrics-1", {"auc": 0.3})
metawriter.finalize()
"""

UPDATE_METHOD_2 = """
from cmflib import cmf
from cmflib import cmfquery

metawriter = cmf.Cmf("mlmd", "test-execution-update")
_ = metawriter.create_context("Train")
_ = metawriter.create_execution("Train-execution", {"name": "test-1"}, create_new_execution=False)
_ = metawriter.log_dataset("artifacts/data.xml.gz", "input", custom_properties={"user-metadata1": "metadata_value"})
_ = metawriter.log_execution_metrics("metrics-1", {"auc": 0.4})
metawriter.finalize()
"""


def ported(script: str) -> str:
    """The script with only its cmflib import lines replaced."""
    text = textwrap.dedent(script).lstrip()
    for old, new in zip(CMFLIB_IMPORTS, COMPAT_IMPORTS, strict=True):
        text = text.replace(old, new)
    changed = [line for line in text.splitlines() if "cmfgit" in line]
    assert changed and all(line + "\n" in COMPAT_IMPORTS for line in changed)
    return text


def run_script(repo: Path, name: str, script: str, *args: str) -> str:
    path = repo / "scripts" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(ported(script))
    proc = subprocess.run(
        [sys.executable, str(path.relative_to(repo)), *args], cwd=repo, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def make_inputs(repo: Path) -> None:
    files = {
        "artifacts/raw_data/a.txt": b"first\n",
        "artifacts/raw_data/b.txt": b"second\n",
        "artifacts/features/train.pkl": b"train features",
        "artifacts/features/test.pkl": b"test features",
        "artifacts/data.xml.gz": gzip.compress(b"<row Id='1'/>\n", mtime=0),
    }
    for rel, data in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(data)
    (repo / "artifacts/model").mkdir(parents=True, exist_ok=True)


def export(repo: Path, pipeline: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(cmfgit(repo, "export", "--format", "cmf-json", "-P", pipeline).stdout)
    return document


def shape(document: dict[str, Any], stage: str | None = None) -> list[Any]:
    """What a CMF reader sees of an export, without what changes on every run
    (ids, times, uuids, md5s of bytes the tests made up, the remote's paths)."""

    def path(name: str) -> str:
        return name.split(":", 1)[0]

    def props(values: dict[str, Any]) -> dict[str, Any]:
        drop = {"labels", "labels_uri"}  # set3's data.xml.gz is also labelled by the Test-env pipeline
        return {k: ("<env>" if k == "Python_Env" else v) for k, v in values.items() if k not in drop}

    out = []
    for pipe in document["Pipeline"]:
        for st in pipe["stages"]:
            if stage is not None and st["name"] != stage:
                continue
            for ex in st["executions"]:
                out.append(
                    {
                        "stage": st["name"],
                        "stage_props": st["custom_properties"],
                        "type": ex["type"],
                        "name": ex["name"],
                        "custom": props(ex["custom_properties"]),
                        "uuids": len(ex["properties"]["Execution_uuid"].split(",")),
                        "events": [
                            (ev["type"], ev["artifact"]["type"], path(ev["artifact"]["name"]))
                            for ev in ex["events"]
                            if ev["artifact"]["type"] != "Environment"
                        ],
                        "environment": sum(ev["artifact"]["type"] == "Environment" for ev in ex["events"]),
                        "values": [
                            props(ev["artifact"]["custom_properties"])
                            for ev in ex["events"]
                            if ev["artifact"]["type"] in ("Metrics", "Dataset")
                        ],
                    }
                )
    return out


def set3(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SET3 / name).read_text())
    return document


# -- item 1: Cmf.DataSlice, get_all_exe_in_stage objects, metawriter.execution = ... --


def test_dataslice_is_reachable_as_cmf_dataslice(repo: Path) -> None:
    make_inputs(repo)
    run_script(repo, "dataslice.py", DATASLICE)
    (rec,) = records(repo, "Test-env").values()
    assert [a["type"] for a in rec["outputs"]] == ["dataslice"]
    from cmfgit.compat import Cmf, DataSlice

    assert Cmf.DataSlice is DataSlice


def test_execution_update_scripts_make_one_execution_as_cmflib(repo: Path) -> None:
    make_inputs(repo)
    run_script(repo, "test_execution_update.py", UPDATE)
    out = run_script(repo, "test_execution_update_method_1.py", UPDATE_METHOD_1)
    # method 1 read the execution back as an object with MLMD's attribute names
    pipeline_line, exe_line = out.splitlines()[:2]
    assert pipeline_line == "test-execution-update"
    ident, name, type_id, rest = exe_line.split(" ", 3)
    assert int(ident) > 0 and name == "Train-execution" and type_id.isdigit()
    assert "'Execution_uuid'" in rest and "'new_new'" in rest and "'new_new_1'" in rest
    run_script(repo, "test_execution_update_method_2.py", UPDATE_METHOD_2)

    # cmfgit keeps what each process did: three records, parts of one CMF execution
    found = records(repo, "test-execution-update")
    assert len(found) == 3
    assert len(set(cmf_parts.keys(found.items()).values())) == 1
    first = min(found.items(), key=lambda item: item[1]["started_at"])
    method_1 = [r for r in found.values() if cmf_parts.continues(r)]
    assert [cmf_parts.continues(r) for r in method_1] == [first[0]]
    assert first[1]["params"] == {"new_new": "value_value", "new_new_1": "value_value_1"}

    # ... and the export is the one execution cmflib wrote (set3's test-execution-update.json)
    document = export(repo, "test-execution-update")
    assert shape(document) == shape(set3("test-execution-update.json"))
    (execution,) = document["Pipeline"][0]["stages"][0]["executions"]
    assert execution["custom_properties"]["name"] == "test-1"
    assert [ev["artifact"]["custom_properties"].get("auc") for ev in execution["events"][-2:]] == [0.3, 0.4]
    own_uuids = [r["uuid"] for r in found.values() if not cmf_parts.continues(r)]
    assert set(own_uuids) < set(execution["properties"]["Execution_uuid"].split(","))


def test_assigning_an_unwritten_execution_is_a_clear_error(repo: Path) -> None:
    from cmfgit.compat import Cmf, Execution
    from cmfgit.errors import UsageError

    os.chdir(repo)
    writer = Cmf(filepath="mlmd", pipeline_name="p")
    writer.create_context("s")
    with pytest.raises(UsageError, match="only an execution that was written"):
        writer.execution = Execution(7, "x", "x")
    assert records(repo) == {}


# -- item 2: finalize() only commits ------------------------------------------------


def test_metrics_logged_after_finalize_belong_to_the_execution(repo: Path) -> None:
    make_inputs(repo)
    run_script(repo, "train.py", TRAIN)
    run_script(repo, "test.py", EVALUATE)
    found = records(repo, "Test-env")
    evaluate = {rid: r for rid, r in found.items() if r["stage"] == "Evaluate"}
    assert len(evaluate) == 2  # finalize() wrote what was logged; the end of the process wrote the rest
    (first_id, first), (part_id, part) = sorted(evaluate.items(), key=lambda item: item[1]["started_at"])
    assert cmf_parts.continues(part) == first_id
    assert [a["path"] for a in first["outputs"]] == []
    assert [a["path"] for a in part["outputs"]] == ["metrics"]
    assert part["metrics"] == {"avg_prec": 1.0, "roc_auc": 1.0}
    assert [a["path"] for a in part["inputs"]] == [a["path"] for a in first["inputs"]]

    # The model's children are the metrics, as cmflib's get_all_child_artifacts(model) says.
    (train,) = [r for r in found.values() if r["stage"] == "Train"]
    model = next(a["hash"] for a in train["outputs"] if a["type"] == "model")
    g = graph(repo)
    children = g.lineage(Node("artifact", model), "down").artifacts() - {model}
    kinds = {a["hash"]: a["path"] for r in found.values() for a in r["outputs"]}
    assert sorted(kinds[h] for h in children) == ["metrics"]

    # One CMF execution, as set3's Evaluate stage.
    document = export(repo, "Test-env")
    assert shape(document, "Test-env/Evaluate") == shape(set3("Test-env.json"), "Test-env/Evaluate")


def test_finalized_execution_survives_kill_9(repo: Path) -> None:
    make_inputs(repo)
    run_script(repo, "train.py", TRAIN)
    path = repo / "scripts" / "test.py"
    path.write_text(ported(EVALUATE))
    ready = repo / "ready"
    proc = subprocess.Popen([sys.executable, "scripts/test.py", str(ready)], cwd=repo)
    try:
        while not ready.exists():
            assert proc.poll() is None, "the script ended before finalize()"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (evaluate,) = [r for r in records(repo, "Test-env").values() if r["stage"] == "Evaluate"]
    assert evaluate["exit_code"] == 0
    assert [a["type"] for a in evaluate["inputs"]] == ["environment", "model", "dataset"]
    cmfgit(repo, "fsck")
