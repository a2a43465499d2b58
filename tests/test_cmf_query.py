"""cmfgit.query.CmfQuery answers CMF's questions as cmflib 0.1's CmfQuery does (issue 14, items 1b and 3).

The data: real cmflib output (tests/fixtures/cmf-set3/mlmd, see its README.txt) imported with
``cmfgit import``. The expected answers (tests/fixtures/cmf-set3/cmflib-answers.json) were
recorded once by running real cmflib 0.1.0's CmfQuery on that file (tests/cmf_questions.py
says how); where cmflib is installed, test_recorded_answers_are_cmflibs asks it again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cmf_questions import CALLS, DATA, MODEL, TRAIN_TSV, ask
from conftest import CMFLIB_MISSING, CMFLIB_PYTHON, cmfgit, make_repo
from qhelp import art, execution, put, ts

from cmfgit import cmf_export
from cmfgit.cmfview import parse_name
from cmfgit.errors import CmfgitError
from cmfgit.query import CmfQuery

PANDAS = "the CMF query methods return pandas frames: pip install -e '.[test]'"

SET3 = Path(__file__).parent / "fixtures" / "cmf-set3"
ANSWERS = json.loads((SET3 / "cmflib-answers.json").read_text())

# What differs from cmflib, and why (docs/coming-from-cmf.md lists the same).
EXECUTION_TYPE_NAME_IS_TEXT = (  # cmflib puts MLMD Value messages in this column (dtype object)
    "get_all_executions_for_artifact",
    "get_all_executions_for_artifact_id",
)
PROPERTY_ORDER = ("get_artifact",)  # cmflib's columns follow protobuf map order, which changes run to run
CMFLIB_ALWAYS_EMPTY = ("get_all_parent_executions_by_id",)  # cmflib 0.1 flattens, then looks for lists


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("set3") / "repo")
    cmfgit(root, "import", str(SET3 / "mlmd"))
    return root


@pytest.fixture(scope="module")
def q(imported: Path) -> Any:
    with CmfQuery(imported) as query:
        yield query


def _same_frame(ours: dict[str, Any], theirs: dict[str, Any], name: str) -> None:
    if name in PROPERTY_ORDER:
        assert sorted(ours["columns"]) == sorted(theirs["columns"]), name
        by_column = [dict(zip(t["columns"], row)) for t in (ours, theirs) for row in t["rows"]]
        assert by_column[: len(ours["rows"])] == by_column[len(ours["rows"]) :], name
        return
    assert ours["columns"] == theirs["columns"], name
    assert ours["rows"] == theirs["rows"], name
    if name in EXECUTION_TYPE_NAME_IS_TEXT:
        at = theirs["columns"].index("execution_type_name")
        assert theirs["dtypes"][at] == "object" and ours["dtypes"][at] == "str"
        assert ours["dtypes"][:at] + ours["dtypes"][at + 1 :] == theirs["dtypes"][:at] + theirs["dtypes"][at + 1 :]
    else:
        assert ours["dtypes"] == theirs["dtypes"], name


def test_the_questions_answer_as_cmflib_does(q: Any) -> None:
    pytest.importorskip("pandas", reason=PANDAS)
    ours = ask(q)
    assert [c[:2] for c in ours] == [c[:2] for c in ANSWERS] == [[n, list(a)] for n, a in CALLS]
    same = 0
    for (name, args, got), (_, _, want) in zip(ours, ANSWERS):
        assert not (isinstance(got, dict) and "error" in got), (name, args, got)
        if name in CMFLIB_ALWAYS_EMPTY:
            assert want == [[], []]
            continue
        if name == "dumptojson":  # the same document (key order is the export's: cmf_export.py)
            assert json.loads(got) == json.loads(want)
        elif isinstance(want, dict) and "rows" in want:
            _same_frame(got, want, name)
        else:
            assert got == want, (name, args)
        same += 1
    assert same == len(CALLS) - len(CMFLIB_ALWAYS_EMPTY)


def test_what_cmfs_example_scripts_do_with_the_answers(q: Any, imported: Path) -> None:
    pytest.importorskip("pandas", reason=PANDAS)
    # CmfQuery("mlmd") / CmfQuery(filepath="mlmd"): the repository the file would be in
    with CmfQuery(str(imported / "mlmd")) as by_file, CmfQuery(filepath=imported / "mlmd") as by_name:
        assert by_file.get_pipeline_names() == by_name.get_pipeline_names() == ["Test-env", "test-execution-update"]
    # example-get-started's query.py drops columns of the frame; execution update method 1 reads .name
    frame = q.get_all_executions_in_stage("Test-env/Train")
    assert list(frame.drop(["Git_Repo", "Git_Start_Commit"], axis=1).columns)[:3] == [
        "Context_ID",
        "Context_Type",
        "Execution",
    ]
    (exe,) = q.get_all_exe_in_stage("test-execution-update/Train")
    assert (exe.id, exe.name, exe.type_id) == (6, "Train-execution", 23)
    assert exe.custom_properties["name"] == "test-1" and exe.properties["Pipeline_id"] == 6
    assert len(exe.record_id) == 64
    # Same-named stages of two pipelines are not mixed: a stage is named <pipeline>/<stage>.
    assert q.get_all_executions_in_stage("Train").empty
    assert list(q.get_all_executions_in_stage("Test-env/Train")["id"]) == [3]


def test_three_part_names_are_the_artifact_not_a_hash_prefix(q: Any, imported: Path) -> None:
    assert parse_name(MODEL) is not None and parse_name(MODEL).execution_id == 3  # type: ignore[union-attr]
    step = "cmf_artifacts/1b11/metrics/training_metrics:030a2badb49e4fab2afba01f4ebd3017:3:1f74db76-ed"
    assert parse_name(step).uuid == "1f74db76-ed"  # type: ignore[union-attr]
    metrics = "metrics:271b45f4-edbb-11f1-ba58-02fc00000001:4"
    assert parse_name(metrics).uri == "271b45f4-edbb-11f1-ba58-02fc00000001"  # type: ignore[union-attr]
    assert parse_name("artifacts/model/model.pkl") is None
    # cmfgit's resolver (lineage, show, the native methods): the model, not a dataslice whose hash starts with 3
    (model_hash,) = q.resolve_artifacts(MODEL)
    assert model_hash == "md5:a789087abbd266a4d0d1c024f52cd9d8"
    (producer,) = q.find_producer_executions(MODEL)
    assert (producer["pipeline"], producer["stage"]) == ("Test-env", "Train")
    assert q.resolve_artifacts(metrics) == q.resolve_artifacts("metrics:271b45f4-edbb-11f1-ba58-02fc00000001")
    (step_hash,) = q.resolve_artifacts(
        "cmf_artifacts/1b11c792-edbb-11f1-837f-02fc00000001/metrics/training_metrics"
        ":030a2badb49e4fab2afba01f4ebd3017:3:1f74db76-edbb-11f1-837f-02fc00000001"
    )
    assert step_hash == "md5:030a2badb49e4fab2afba01f4ebd3017"
    out = json.loads(cmfgit(imported, "lineage", MODEL, "--json").stdout)
    executions = [n for n in out["nodes"] if n.get("kind") == "execution"]
    assert {n["stage"] for n in executions} == {"Train", "Featurize", "Prepare"}, out


def test_three_part_names_in_cmfs_methods(q: Any) -> None:
    pytest.importorskip("pandas", reason=PANDAS)
    producer = q.find_producer_execution(MODEL)
    assert producer.id == 3 and producer.properties["Context_Type"] == "Test-env/Train"
    assert [e["id"] for e in q.find_producer_executions(MODEL)] == [producer.record_id]
    parents = q.get_all_parent_artifacts(MODEL)
    assert "artifacts/data.xml.gz:bb62728245360e7073e87cb66ff9b981" in list(parents["name"])
    assert set(q.get_one_hop_parent_artifacts(MODEL)["type"]) == {"Dataset", "Environment"}


def test_ids_integers_and_cmfgit_ids(q: Any) -> None:
    pytest.importorskip("pandas", reason=PANDAS)
    train = q.find_producer_execution(MODEL)
    by_int = q.get_all_artifacts_for_execution(3)
    assert list(q.get_all_artifacts_for_execution(train.record_id[:12])["name"]) == list(by_int["name"])
    assert list(by_int["event"]) == ["INPUT", "INPUT", "OUTPUT", "OUTPUT"]
    assert list(q.get_all_executions_by_ids_list([train.record_id])["Execution_uuid"]) == [
        train.properties["Execution_uuid"]
    ]
    assert [e.id for e in q.get_one_hop_parent_executions([4])] == [3, 2]
    assert list(q.get_all_artifacts_by_ids_list([9, TRAIN_TSV])["id"]) == [4, 9]
    assert q.get_pipeline_id("test-execution-update") == 6
    assert list(q.get_all_executions_for_artifact_id(2)["execution_id"]) == [1, 6]
    assert list(q.get_executions_with_execution_ids([6]).columns) == ["id", "Execution_type_name", "Execution_uuid"]
    # cmfgit's names work where cmflib would find nothing: a path, a hash
    assert q.find_producer_execution("artifacts/model/model.pkl").id == 3
    assert list(q.get_one_hop_child_artifacts("md5:bb62728245360e7073e87cb66ff9b981")["name"]) == list(
        q.get_one_hop_child_artifacts(DATA)["name"]
    )
    assert q.get_artifact("no/such:file") is None and q.find_producer_execution("no/such:file") is None
    (step,) = q.get_all_artifacts_by_context("Test-env").query("type == 'Step_Metrics'")["name"]
    with pytest.raises(CmfgitError, match=r"metrics/training_metrics: not in the working tree"):
        q.get_metrics(step)  # cmflib's file, named by its Name property, was not imported with the data


def test_native_records_get_the_ids_and_names_of_their_export(tmp_path: Path) -> None:
    pytest.importorskip("pandas", reason=PANDAS)
    root = make_repo(tmp_path / "repo")
    ids = put(
        root,
        execution("prep", [art("raw")], [art("train.csv")], pipeline="wine", started_at=ts(1)),
        execution("train", [art("train.csv")], [art("m1", "model", "model.pkl")], pipeline="wine", started_at=ts(2)),
        execution("train", [art("iris.csv")], [art("m2", "model", "model.pkl")], pipeline="iris", started_at=ts(3)),
        # one uuid, two records (as an execution imported both with and without its bytes): two executions
        execution("train", [art("iris.csv")], [art("m3", "model")], pipeline="iris", started_at=ts(4), uuid="u-1"),
        execution("train", [art("iris.csv")], [art("m4", "model")], pipeline="iris", started_at=ts(5), uuid="u-1"),
        execution("fit", [], [art("sm", "step_metrics", "metrics/fit.csv")], pipeline="sweep", started_at=ts(6)),
    )
    (root / "metrics").mkdir()
    (root / "metrics" / "fit.csv").write_text("SequenceNumber,loss\n0,1.0\n1,0.5\n")
    with CmfQuery(root) as q:
        assert q.get_pipeline_names() == ["iris", "sweep", "wine"]
        (step,) = [n for n in q.get_all_artifacts() if n.startswith("metrics/fit.csv:")]
        assert q.get_metrics(step).to_dict("list") == {"SequenceNumber": [0, 1], "loss": [1.0, 0.5]}
        assert q.get_metrics("metrics/fit.csv:nope") is None
        assert q.get_pipeline_stages("wine") == ["wine/prep", "wine/train"]
        assert q.get_all_executions_in_stage("train").empty  # two pipelines' train stages are not mixed
        wine = q.get_all_executions_in_stage("wine/train")
        assert list(wine["Execution_uuid"]) == [q.execution(ids[1])["uuid"]]
        assert sorted(q.get_all_artifact_types()) == ["Dataset", "Model", "Step_Metrics"]
        # The ids a CMF tool sees in `cmfgit export` of the pipeline.
        doc = cmf_export.build(q.execution_records(pipeline="iris"), "iris")
        exported = next(
            e
            for s in doc["Pipeline"][0]["stages"]
            for e in s["executions"]
            if e["properties"]["Execution_uuid"] != "u-1"
        )
        model = next(ev["artifact"] for ev in exported["events"] if ev["artifact"]["type"] == "Model")
        assert model["name"] in q.get_all_artifacts()
        assert q.find_producer_execution(model["name"]).record_id == ids[2]
        assert q.get_pipeline_id("iris") == doc["Pipeline"][0]["id"]
        names = set(q.get_all_artifacts())
        assert len(names) == 8 and all(parse_name(n) for n in names)
        assert sorted(e.record_id for e in q.cmf_view().executions.values()) == sorted(ids)


def test_without_pandas_a_clear_one_line_error(q: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(CmfgitError, match=r"returns a pandas DataFrame, as cmflib's does: pip install 'cmfgit\[cmf\]'"):
        q.get_all_executions_in_stage("Test-env/Train")
    assert q.get_pipeline_stages("Test-env")[0] == "Test-env/Prepare"  # lists need no pandas


@pytest.mark.skipif(not CMFLIB_PYTHON.exists(), reason=CMFLIB_MISSING)
def test_recorded_answers_are_cmflibs(tmp_path: Path) -> None:
    copy = tmp_path / "mlmd"
    shutil.copyfile(SET3 / "mlmd", copy)
    out = subprocess.run(
        [str(CMFLIB_PYTHON), str(Path(__file__).parent / "cmf_questions.py"), str(copy)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    fresh = json.loads(out.stdout)
    for (name, args, got), (_, _, want) in zip(fresh, ANSWERS):
        if name in PROPERTY_ORDER:
            _same_frame(got, want, name)
        elif name == "dumptojson":  # (properties in protobuf map order, which changes run to run)
            assert json.loads(got) == json.loads(want)
        else:
            assert got == want, (name, args)
