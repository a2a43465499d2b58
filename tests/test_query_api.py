"""cmfgit.query.CmfQuery: cmfgit's questions in plain Python types, and CMF's on native records
(set3's imported data against real cmflib: test_cmf_query.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import make_repo
from qhelp import art, execution, h, put, ts

from cmfgit.errors import CmfgitError
from cmfgit.graph import Node
from cmfgit.query import CmfQuery

MD5 = "md5:" + "ab" * 16


@pytest.fixture(scope="module")
def q(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = make_repo(tmp_path_factory.mktemp("api") / "repo")
    imported = art("unused", path="data/shared.csv")
    imported.update(hash=MD5, kind="external", size=None)
    records = {
        "prep": execution("prep", [art("raw")], [art("train.csv"), art("test.csv")], pipeline="wine", started_at=ts(1)),
        "train1": execution(
            "train",
            [art("train.csv")],
            [art("m1", "model", "model.pkl")],
            pipeline="wine",
            params={"lr": 0.1},
            metrics={"loss": 0.3},
            started_at=ts(2),
            step_metrics={"loss": [[0, 1.0], [1, 0.5], [2, 0.3]]},
        ),
        "train2": execution(
            "train",
            [art("train.csv")],
            [art("m2", "model", "model.pkl")],
            pipeline="wine",
            params={"lr": 0.01},
            metrics={"loss": 0.2},
            started_at=ts(3),
        ),
        "eval": execution(
            "evaluate",
            [art("m2", "model", "model.pkl"), art("test.csv")],
            [art("scores", "metrics")],
            pipeline="wine",
            metrics={"acc": 0.93},
            started_at=ts(4),
        ),
        "other": execution("load", [imported], [art("iris.csv")], pipeline="iris", started_at=ts(5)),
        "uses": execution(
            "fit",
            [art("shared", path="data/shared.csv", aliases=[MD5])],
            [art("iris-model", "model")],
            pipeline="iris",
            started_at=ts(6),
        ),
    }
    ids = dict(zip(records, put(root, *records.values())))
    query = CmfQuery(root)
    query.ids = ids
    yield query
    query.close()


def uri(name: str) -> str:
    """The CMF uri cmfgit exports for a test artifact: its blake3 hex."""
    return h(name).split(":", 1)[1]


def files(frame: Any) -> set[str]:
    """The uris of a frame's artifacts other than the Metrics ones CMF keeps a record's metrics in."""
    return {u for u, t in zip(frame["uri"], frame["type"]) if t != "Metrics"}


def test_pipelines_stages_and_executions(q: Any) -> None:
    pytest.importorskip("pandas")
    ids = q.ids
    assert q.get_pipeline_names() == ["iris", "wine"]
    assert q.get_pipeline_stages("wine") == ["wine/prep", "wine/train", "wine/evaluate"]  # CMF's stage names
    runs = q.get_all_executions_in_stage("wine/train")
    uuids = {q.execution(ids[n])["uuid"]: n for n in ids}
    assert [uuids[u] for u in runs["Execution_uuid"]] == ["train2", "train1"]  # newest first, as MLMD lists them
    assert q.get_all_executions_in_stage("train").empty  # a stage is named <pipeline>/<stage>, as in cmflib
    assert [e.record_id for e in q.get_all_exe_in_stage("wine/train")] == [ids["train2"], ids["train1"]]
    assert len(q.get_all_executions_in_pipeline("wine")) == 4
    frame = q.get_all_executions_by_ids_list([ids["eval"][:8], ids["prep"]])  # cmfgit ids work too
    assert sorted(frame["Execution_type_name"]) == ["wine/evaluate", "wine/prep"]
    assert q.execution(ids["train1"][:10])["params"] == {"lr": 0.1}
    best = q.executions("stage == 'train'", sort="metrics.loss", limit=1)
    assert best[0]["id"] == ids["train2"]
    assert {p["pipeline"]: p["executions"] for p in q.pipelines()} == {"iris": 2, "wine": 4}


def test_artifacts(q: Any) -> None:
    pytest.importorskip("pandas")
    ids = q.ids
    assert q.get_all_artifact_types() == ["Dataset", "Model", "Metrics"]  # CMF's type names, by type id
    models = q.get_all_artifacts_by_type("model")  # (cmfgit's: JSON objects)
    assert {m["hash"] for m in models} == {h("m1"), h("m2"), h("iris-model")}
    assert set(q.get_all_artifacts_by_context("iris")["uri"]) == {"ab" * 16, uri("iris.csv"), uri("iris-model")}
    names = q.get_all_artifacts()
    assert f"data/raw:{uri('raw')}" in names and f"data/shared.csv:{'ab' * 16}" in names
    m2 = q.get_artifact(h("m2")[:16])
    (name,) = m2["name"]
    assert name.startswith(f"model.pkl:{uri('m2')}:") and q.find_producer_execution(name).record_id == ids["train2"]
    assert q.get_artifact("model.pkl")["uri"][0] in {uri("m1"), uri("m2")}  # a path: one of its versions
    events = q.get_all_artifacts_for_execution(ids["eval"])
    assert list(zip(events["event"], events["uri"]))[:3] == [
        ("INPUT", uri("m2")),
        ("INPUT", uri("test.csv")),
        ("OUTPUT", uri("scores")),
    ]
    assert list(events["type"])[3:] == ["Metrics"]  # the record's metrics, as CMF keeps them (cmf_export.py)
    used = q.get_all_executions_for_artifact(h("train.csv"))
    assert sorted(used["Type"]) == ["INPUT", "INPUT", "OUTPUT"] and set(used["stage"]) == {"wine/prep", "wine/train"}
    assert q.find_producer_execution(h("scores")).record_id == ids["eval"]
    assert q.find_producer_execution(h("raw")) is None
    assert q.get_artifact("blake3:00000000") is None
    with pytest.raises(CmfgitError, match="no artifact matches"):
        q.resolve_artifacts("blake3:00000000")


def test_parents_and_children(q: Any) -> None:
    pytest.importorskip("pandas")
    ids = q.ids
    assert set(q.get_one_hop_parent_artifacts(h("scores"))["uri"]) == {uri("m2"), uri("test.csv")}
    assert set(q.get_all_parent_artifacts(h("scores"))["uri"]) == {
        uri(n) for n in ("m2", "test.csv", "train.csv", "raw")
    }
    assert files(q.get_one_hop_child_artifacts(h("train.csv"))) == {uri("m1"), uri("m2")}
    assert files(q.get_all_child_artifacts(h("raw"))) == {
        uri(n) for n in ("train.csv", "test.csv", "m1", "m2", "scores")
    }
    parents = q.get_all_parent_executions(h("scores"))
    assert set(parents["Execution_type_name"]) == {"wine/train", "wine/prep"}  # who wrote what scores came from
    view = q.cmf_view()
    eval_id = next(e.id for e in view.executions.values() if e.record_id == ids["eval"])
    assert [e.record_id for e in q.get_one_hop_parent_executions([eval_id])] == [ids["train2"], ids["prep"]]
    assert {e["id"] for e in q.get_all_child_executions(h("raw"))} == {
        ids[n] for n in ("prep", "train1", "train2", "eval")
    }
    # CMF's md5 identity and the blake3 of the same bytes are one artifact.
    assert {e["id"] for e in q.get_one_hop_child_executions(MD5)} == {ids["other"], ids["uses"]}
    assert files(q.get_one_hop_child_artifacts("data/shared.csv:" + "ab" * 16)) == {
        uri("iris.csv"),
        uri("iris-model"),
    }


def test_step_metrics_and_frames(q: Any) -> None:
    ids = q.ids
    assert q.get_step_metrics(ids["train1"]) == [
        {"name": "loss", "step": 0, "value": 1.0},
        {"name": "loss", "step": 1, "value": 0.5},
        {"name": "loss", "step": 2, "value": 0.3},
    ]
    assert q.get_metrics("no:such") is None  # cmflib's: the Step_Metrics artifact of that name
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(CmfgitError, match="needs pandas"):
            q.executions(stage="train", as_frame=True)
    else:
        frame = q.executions(stage="train", as_frame=True)
        assert list(frame["id"]) == [ids["train2"], ids["train1"]]
        assert "params.lr" in frame.columns


def test_other_scopes(tmp_path: Path) -> None:
    from conftest import git

    root = make_repo(tmp_path / "r")
    put(root, execution("a", [art("x")], [art("y")], started_at=ts(1)))
    git(root, "add", ".cmf")
    git(root, "commit", "-q", "-m", "a")
    git(root, "checkout", "-q", "-b", "side")
    put(root, execution("b", [art("y")], [art("z")], started_at=ts(9)))
    git(root, "add", ".cmf")
    git(root, "commit", "-q", "-m", "b")
    git(root, "checkout", "-q", "main")
    with CmfQuery(root) as here, CmfQuery(root, ref="side") as side, CmfQuery(root, scope="all-branches") as every:
        assert [r["stage"] for r in here.executions()] == ["a"]
        assert [r["stage"] for r in side.executions()] == ["b", "a"]
        assert side.lineage([Node("artifact", h("x"))], "down")[0].artifacts() >= {h("y"), h("z")}
        assert len(every.executions()) == 2
    with pytest.raises(CmfgitError, match="cmfgit global fetch origin"):
        CmfQuery(root, scope="global")
    with pytest.raises(CmfgitError, match="unknown revision"):
        CmfQuery(root, ref="nope")


def test_the_earliest_producer_whatever_the_hash_order(tmp_path: Path) -> None:
    """One path written by several runs, each a new version: the producer is the
    run that started first, not the one whose output hash sorts first; the lists
    of producers and users are in start order too (then by id)."""
    root = make_repo(tmp_path / "repo")
    names = sorted((f"v{i}" for i in range(6)), key=lambda n: h(n), reverse=True)  # highest hash first
    records = {
        n: execution("train", [art("data")], [art(n, "model", "model.pkl")], params={"i": i}, started_at=ts(10 + i))
        for i, n in enumerate(names)
    }
    # the version with the highest hash was also written before all the others
    records["again"] = execution("retrain", [], [art(names[0], "model", "model.pkl")], started_at=ts(1))
    ids = dict(zip(records, put(root, *records.values())))
    by_start = [ids["again"], *(ids[n] for n in names)]  # ts 1, then ts 10..15
    with CmfQuery(root) as q:
        assert [e["id"] for e in q.find_producer_executions("model.pkl")] == by_start
        assert [e["id"] for e in q.find_producer_executions(h(names[0]))] == [ids["again"], ids[names[0]]]
        assert [e["id"] for e in q.find_producer_executions(h(names[-1]))] == [ids[names[-1]]]
        users = q.get_all_child_executions(h("data"))
        assert [u["id"] for u in users] == [ids[n] for n in names]
