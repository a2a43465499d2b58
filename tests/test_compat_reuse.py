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
from conftest import CMFLIB_MISSING, ROOT, cmfgit

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


# -- item 3: one reused execution across sites ------------------------------------------


def test_reused_execution_joins_across_sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import git
    from sites import clone_site, isolate, seed_remote

    isolate(monkeypatch, tmp_path)
    _, url = seed_remote(tmp_path)
    site_a = clone_site(tmp_path, url, "dc1")
    site_b = clone_site(tmp_path, url, "edge7")
    for site in (site_a, site_b):
        make_inputs(site)
    run_script(site_a, "test_execution_update.py", UPDATE)
    run_script(site_b, "test_execution_update_method_2.py", UPDATE_METHOD_2)  # before it saw dc1's record
    git(site_a, "add", "-A", ".cmf")
    git(site_a, "commit", "-q", "-m", "dc1's run")
    git(site_a, "push", "-q", "origin", "main")
    git(site_b, "add", "-A", ".cmf")
    git(site_b, "commit", "-q", "-m", "edge7's run")
    git(site_b, "pull", "-q", "--no-rebase", "--no-edit", "origin", "main")

    found = records(site_b, "test-execution-update")
    assert sorted(r["site"] for r in found.values()) == ["dc1", "edge7"]
    (execution,) = export(site_b, "test-execution-update")["Pipeline"][0]["stages"][0]["executions"]
    assert execution["name"] == "Train-execution"
    assert {k: v for k, v in execution["custom_properties"].items() if k != "Python_Env"} == {
        "new_new": "value_value",
        "new_new_1": "value_value_1",
        "name": "test-1",
    }
    assert len(execution["properties"]["Execution_uuid"].split(",")) == 3
    cmfgit(site_b, "fsck")


def test_fold_keeps_other_records_and_is_order_independent() -> None:
    def rec(stage: str, started: str, name: str = "", cont: str | None = None, **extra: Any) -> dict[str, Any]:
        execution: dict[str, Any] = {"name": name} if name else {}
        if cont:
            execution["continues"] = cont
        return {
            "schema": "cmfgit/execution/1",
            "uuid": f"u-{started}",
            "pipeline": "p",
            "stage": stage,
            "type": name or "T",  # compat's convention: a reused execution's type is its name
            "params": extra.get("params", {}),
            "started_at": started,
            "ended_at": started,
            "exit_code": extra.get("exit_code", 0),
            "inputs": [],
            "outputs": extra.get("outputs", []),
            "metrics": {},
            "source": {"cmf": {"execution": execution}},
        }

    art = {"path": "m", "hash": "md5:" + "0" * 32, "type": "metrics", "kind": "external", "size": None, "props": {}}
    items = [
        ("a" * 64, rec("s", "2026-01-01T00:00:01.000000Z", params={"x": 1})),
        ("b" * 64, rec("s", "2026-01-01T00:00:02.000000Z", cont="a" * 64, outputs=[art], exit_code=1)),
        ("c" * 64, rec("s", "2026-01-01T00:00:03.000000Z", name="R", params={"y": 1})),
        ("d" * 64, rec("t", "2026-01-01T00:00:04.000000Z")),
        ("e" * 64, rec("s", "2026-01-01T00:00:05.000000Z", name="R", params={"y": 2, "z": 3})),
    ]
    folded = cmf_parts.fold(items)
    assert [rid[0] for rid, _ in folded] == ["a", "c", "d"]
    first = [rid for rid, _ in folded]
    assert sorted(cmf_parts.fold(list(reversed(items))), key=lambda p: first.index(p[0])) == folded
    merged = dict(folded)
    assert merged["a" * 64]["outputs"][0]["path"] == "m" and merged["a" * 64]["exit_code"] == 1
    assert merged["c" * 64]["params"] == {"y": 2, "z": 3} and merged["c" * 64]["type"] == "p/s"
    assert merged["c" * 64]["source"]["cmf"]["execution"]["properties"]["Execution_uuid"] == (
        "u-2026-01-01T00:00:03.000000Z,u-2026-01-01T00:00:05.000000Z"
    )
    assert merged["d" * 64] is items[3][1]


def _cmflib_ready() -> bool:
    from conftest import CMFLIB_PYTHON

    if not CMFLIB_PYTHON.exists():
        return False
    return subprocess.run([str(CMFLIB_PYTHON), "-c", "import cmflib.cmf_merger"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _cmflib_ready(), reason=CMFLIB_MISSING)
def test_cmflib_loads_the_reused_execution_as_one(repo: Path, tmp_path: Path) -> None:
    from conftest import CMFLIB_PYTHON

    make_inputs(repo)
    for name, script in (
        ("test_execution_update.py", UPDATE),
        ("test_execution_update_method_1.py", UPDATE_METHOD_1),
        ("test_execution_update_method_2.py", UPDATE_METHOD_2),
    ):
        run_script(repo, name, script)
    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps(export(repo, "test-execution-update")))
    project = tmp_path / "cmfproject"
    project.mkdir()
    env = {**os.environ, "PATH": f"{CMFLIB_PYTHON.parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": ""}

    def run(*args: str) -> str:
        proc = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    run("git", "init", "-q", "--bare", str(tmp_path / "remote.git"))
    run("cmf", "init", "local", "--path", str(tmp_path / "storage"), "--git-remote-url", str(tmp_path / "remote.git"))
    loader = textwrap.dedent(
        """
        import json, sys
        from cmflib.cmf_merger import parse_json_to_mlmd
        from cmflib.cmfquery import CmfQuery
        document = json.load(open(sys.argv[1]))
        for pipeline in document["Pipeline"]:
            assert parse_json_to_mlmd(json.dumps(pipeline), "mlmd", "pull", None) == "success"
        print(CmfQuery("mlmd").dumptojson("test-execution-update"))
        """
    )
    theirs = json.loads(run(str(CMFLIB_PYTHON), "-c", loader, str(ours)).strip().splitlines()[-1])
    assert shape(theirs) == shape(set3("test-execution-update.json"))


# -- the whole example-get-started pipeline, against set3's Test-env.json ---------------------

PARSE = """
import os
from cmflib import cmf

params = {"split": 0.2, "seed": 20170428}
metawriter = cmf.Cmf(filepath="mlmd", pipeline_name="Test-env")
_ = metawriter.create_context(pipeline_stage="Prepare", custom_properties={"user-metadata1": "metadata_value"})
_ = metawriter.create_execution(execution_type="Prepare", custom_properties=params)
_ = metawriter.log_dataset("artifacts/data.xml.gz", "input", custom_properties={"user-metadata1": "metadata_value"},
                           label="artifacts/labels.csv", label_properties={"user-metadata1": "metadata_value"})
os.makedirs("artifacts/parsed", exist_ok=True)
for name in ("train.tsv", "test.tsv"):
    with open("artifacts/parsed/" + name, "w") as fh:
        fh.write(name + "\\n")
    _ = metawriter.log_dataset("artifacts/parsed/" + name, "output")
"""

FEATURIZE = """
import os
from cmflib import cmf

metawriter = cmf.Cmf(filepath="mlmd", pipeline_name="Test-env")
_ = metawriter.create_context(pipeline_stage="Featurize")
params = {"max_features": 3000, "ngrams": 2}
_ = metawriter.create_execution(execution_type="Featurize-execution", custom_properties=params)
for name in ("train.tsv", "test.tsv"):
    _ = metawriter.log_dataset("artifacts/parsed/" + name, "input")
for name in ("train.pkl", "test.pkl"):
    with open("artifacts/features/" + name, "w") as fh:
        fh.write("features of " + name + "\\n")
    _ = metawriter.log_dataset("artifacts/features/" + name, "output")
"""

TRAIN_FULL = """
from cmflib import cmf

metawriter = cmf.Cmf(filepath="mlmd", pipeline_name="Test-env")
_ = metawriter.create_context(pipeline_stage="Train")
_ = metawriter.create_execution(execution_type="Train-execution",
                                custom_properties={"seed": 20170428, "n_est": 100, "min_split": 64})
_ = metawriter.log_dataset("artifacts/features/train.pkl", "input")
for step in range(3):
    metawriter.log_metric("training_metrics", {"ns": step, "loss": 1.0 / (step + 1)})
_ = metawriter.commit_metrics("training_metrics")
with open("artifacts/model/model.pkl", "wb") as fh:
    fh.write(b"a forest")
_ = metawriter.log_model(path="artifacts/model/model.pkl", event="output", model_framework="SKlearn",
                         model_type="RandomForestClassifier", model_name="RandomForestClassifier:default")
"""

DATASLICE_2 = """
from cmflib import cmf

metawriter = cmf.Cmf(filepath="mlmd", pipeline_name="Test-env")
_ = metawriter.create_context(pipeline_stage="Prepare")
_ = metawriter.create_execution(execution_type="Prepare")
_ = metawriter.log_dataset("artifacts/raw_data", "input")
for name, files in (("slice-1", ("a.txt",)), ("slice-2", ("b.txt",))):
    dataslice: cmf.Cmf.DataSlice = metawriter.create_dataslice(name)
    for file in files:
        dataslice.add_data("artifacts/raw_data/" + file, {"key1": "value1"})
    dataslice.commit()
"""


def test_example_get_started_records_set3s_graph(repo: Path) -> None:
    import re

    from conftest import make_repo

    make_inputs(repo)
    (repo / "artifacts/labels.csv").write_text("label\n1\n")
    for name, script in (
        ("parse.py", PARSE),
        ("featurize.py", FEATURIZE),
        ("train.py", TRAIN_FULL),
        ("test.py", EVALUATE),
        ("test-data-slice.py", DATASLICE_2),
    ):
        run_script(repo, name, script)

    def normal(document: dict[str, Any]) -> list[str]:
        found = []
        for item in shape(document):
            # cmfgit keeps float params as floats (cmflib stored "0.2"; docs/coming-from-cmf.md); compat's
            # step metrics and slices are at cmflib's paths (parquet, no extension), under another uuid.
            item["custom"] = {k: str(v) for k, v in item["custom"].items()}
            item["events"] = [
                (t, ty, re.sub(r"^cmf_artifacts/[0-9a-f-]{36}/", r"cmf_artifacts/-/", p)) for t, ty, p in item["events"]
            ]
            # stage_props: the union over a stage's executions, as CMF's context keeps them (issue 14 item 2c)
            item["values"] = [{k: v for k, v in vals.items() if k != "avg_prec"} for vals in item["values"]]
            found.append(json.dumps(item, sort_keys=True))
        return sorted(found)

    ours = export(repo, "Test-env")
    assert normal(ours) == normal(set3("Test-env.json"))

    # the lineage CMF's query script asks about: the model's parents and children
    found = records(repo, "Test-env")
    (train,) = [r for r in found.values() if r["stage"] == "Train"]
    model = next(a["hash"] for a in train["outputs"] if a["type"] == "model")
    paths = {a["hash"]: a["path"] for r in found.values() for a in r["inputs"] + r["outputs"]}
    g = graph(repo)
    down = g.lineage(Node("artifact", model), "down").artifacts() - {model}
    up = g.lineage(Node("artifact", model), "up").artifacts() - {model}
    assert sorted(paths[h] for h in down) == ["metrics"]
    assert {"artifacts/features/train.pkl", "artifacts/parsed/train.tsv", "artifacts/data.xml.gz"} <= {
        paths[h] for h in up
    }

    # CMF's query script, through cmfgit.query, answers about this graph as about set3's (imported).
    ours_answers = json.loads(run_script(repo, "query.py", QUERY))
    imported = make_repo(repo.parent / "set3-imported")
    cmfgit(imported, "import", str(SET3 / "mlmd"))
    theirs_answers = json.loads(run_script(imported, "query.py", QUERY))
    assert ours_answers == theirs_answers
    assert ours_answers["children"] == [["Metrics", "metrics"]]  # cmflib's get_all_child_artifacts(model)
    assert ours_answers["producer"] == "Test-env/Train"


# In the style of CMF's example query script: walks the pipeline with the data frames cmflib returns.
QUERY = """
import json, re
from cmflib import cmfquery


def path(name):
    name = re.sub(r"^cmf_artifacts/[0-9a-f-]{36}/", "cmf_artifacts/-/", name.split(":")[0])
    return re.sub(r"python_env_[0-9a-f]{32}", "python_env_-", name)


query = cmfquery.CmfQuery("mlmd")
out = {"stages": query.get_pipeline_stages("Test-env"), "executions": {}}
for stage in out["stages"]:
    df = query.get_all_executions_in_stage(stage)
    df = df.drop(["id", "Execution_uuid", "Git_Start_Commit", "Git_End_Commit", "Git_Repo", "Context_ID",
                  "Pipeline_id", "Execution", "custom_properties_Python_Env"], axis=1, errors="ignore")
    rows = [{k: str(v) for k, v in sorted(row.items())} for row in df.to_dict("records")]
    ids = list(query.get_all_executions_in_stage(stage)["id"])
    arts = [sorted([t, path(n)] for t, n in zip(a["type"], a["name"]))
            for a in (query.get_all_artifacts_for_execution(int(i)) for i in ids)]
    out["executions"][stage] = sorted(json.dumps([r, a], sort_keys=True) for r, a in zip(rows, arts))
(model,) = [n for n in query.get_all_artifacts() if n.startswith("artifacts/model/model.pkl:")]
children = query.get_all_child_artifacts(model)
out["children"] = sorted([t, path(n)] for t, n in zip(children["type"], children["name"]))
parents = query.get_all_parent_artifacts(model)
out["parents"] = sorted([t, path(n)] for t, n in zip(parents["type"], parents["name"]))
out["producer"] = query.find_producer_execution(model).properties["Context_Type"]
print(json.dumps(out, sort_keys=True))
"""


NANO = """
import os
from cmflib import cmf

metawriter = cmf.Cmf()  # no arguments: the pipeline is named after the directory, the stage after the script
_ = metawriter.log_dataset("artifacts/data.xml.gz", "input", custom_properties={"user-metadata1": "metadata_value"},
                           label="artifacts/labels.csv")
os.makedirs("artifacts/parsed", exist_ok=True)
for name in ("train.tsv", "test.tsv"):
    with open("artifacts/parsed/" + name, "w") as fh:
        fh.write(name + "\\n")
    _ = metawriter.log_dataset("artifacts/parsed/" + name, "output")
"""


def test_nano_cmf_with_no_arguments_records_set3s_graph(tmp_path: Path) -> None:
    from conftest import make_repo

    nano = make_repo(tmp_path / "nano")
    make_inputs(nano)
    (nano / "artifacts/labels.csv").write_text("label\n1\n")
    path = nano / "src" / "parse.py"
    path.parent.mkdir()
    path.write_text(ported(NANO))
    proc = subprocess.run([sys.executable, "src/parse.py"], cwd=nano, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert shape(export(nano, "nano")) == shape(set3("nano-nano.json"))


def test_compat_reuses_an_execution_imported_from_cmf(repo: Path) -> None:
    make_inputs(repo)
    cmfgit(repo, "import", str(SET3 / "test-execution-update.json"))
    run_script(repo, "test_execution_update_method_2.py", UPDATE_METHOD_2)
    assert len(records(repo, "test-execution-update")) == 2
    (execution,) = export(repo, "test-execution-update")["Pipeline"][0]["stages"][0]["executions"]
    assert (execution["type"], execution["name"]) == ("test-execution-update/Train", "Train-execution")
    assert len(execution["properties"]["Execution_uuid"].split(",")) == 4  # set3's three, and this run's
    assert execution["properties"]["Execution_uuid"].startswith("3390b15c-edbb-11f1-a186-02fc00000001,")
    aucs = [ev["artifact"]["custom_properties"].get("auc") for ev in execution["events"] if ev["type"] == 4]
    assert aucs == [0.3, 0.4, 0.4]


def test_same_name_of_another_mlmd_type_is_another_execution() -> None:
    def rec(kind: str, started: str) -> dict[str, Any]:
        return {
            "schema": "cmfgit/execution/1",
            "uuid": started,
            "pipeline": "p",
            "stage": "s",
            "type": kind,
            "started_at": started,
            "source": {"cmf": {"execution": {"name": "N"}}},
        }

    items = [
        ("a" * 64, rec("TypeA", "2026-01-01T00:00:01.000000Z")),
        ("b" * 64, rec("TypeB", "2026-01-01T00:00:02.000000Z")),
    ]
    assert len(set(cmf_parts.keys(items).values())) == 2
    assert [r["type"] for _, r in cmf_parts.fold(items)] == ["TypeA", "TypeB"]
