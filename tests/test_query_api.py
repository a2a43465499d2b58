"""cmfgit.query.CmfQuery: CmfQuery's questions answered in plain Python types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import make_repo
from qhelp import art, execution, h, put, ts

from cmfgit.errors import CmfgitError
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


def test_pipelines_stages_and_executions(q: Any) -> None:
    ids = q.ids
    assert q.get_pipeline_names() == ["iris", "wine"]
    assert q.get_pipeline_stages("wine") == ["prep", "train", "evaluate"]
    runs = q.get_all_executions_in_stage("train")
    assert [r["id"] for r in runs] == [ids["train2"], ids["train1"]]  # newest first
    # cmflib's get_all_exe_in_stage: MLMD-like objects, oldest first (cmfgit.cmf_objects.Execution)
    exes = q.get_all_exe_in_stage("wine/train")
    assert [(e.record_id, e.stage, e.pipeline) for e in exes] == [
        (ids["train1"], "train", "wine"),
        (ids["train2"], "train", "wine"),
    ]
    assert exes[0].custom_properties == {"lr": 0.1} and exes[0].properties["Context_Type"] == "wine/train"
    assert len(q.get_all_executions_in_pipeline("wine")) == 4
    assert [r["stage"] for r in q.get_all_executions_by_ids_list([ids["eval"][:8], ids["prep"]])] == [
        "evaluate",
        "prep",
    ]
    assert q.execution(ids["train1"][:10])["params"] == {"lr": 0.1}
    best = q.executions("stage == 'train'", sort="metrics.loss", limit=1)
    assert best[0]["id"] == ids["train2"]
    assert {p["pipeline"]: p["executions"] for p in q.pipelines()} == {"iris": 2, "wine": 4}


def test_artifacts(q: Any) -> None:
    ids = q.ids
    assert q.get_all_artifact_types() == ["dataset", "metrics", "model"]
    models = q.get_all_artifacts_by_type("model")
    assert {m["hash"] for m in models} == {h("m1"), h("m2"), h("iris-model")}
    assert {a["hash"] for a in q.get_all_artifacts_by_context("iris")} == {
        h("shared"),
        h("iris.csv"),
        h("iris-model"),
        MD5,
    }
    assert set(q.get_all_artifacts()) >= {h("raw"), MD5}
    m2 = q.get_artifact(h("m2")[:16])
    assert m2["producers"] == [ids["train2"]] and m2["consumers"] == [ids["eval"]]
    assert {a["hash"] for a in q.get_artifact("model.pkl")} == {h("m1"), h("m2")}  # every version at a path
    events = q.get_all_artifacts_for_execution(ids["eval"])
    assert [(e["event"], e["hash"]) for e in events] == [
        ("INPUT", h("m2")),
        ("INPUT", h("test.csv")),
        ("OUTPUT", h("scores")),
    ]
    used = q.get_all_executions_for_artifact(h("train.csv"))
    assert {(u["event"], u["id"]) for u in used} == {
        ("OUTPUT", ids["prep"]),
        ("INPUT", ids["train1"]),
        ("INPUT", ids["train2"]),
    }
    assert q.find_producer_execution(h("scores"))["id"] == ids["eval"]
    assert q.find_producer_execution(h("raw")) is None
    with pytest.raises(CmfgitError, match="no artifact matches"):
        q.get_artifact("blake3:00000000")


def test_parents_and_children(q: Any) -> None:
    ids = q.ids
    assert {a["hash"] for a in q.get_one_hop_parent_artifacts(h("scores"))} == {h("m2"), h("test.csv")}
    assert {a["hash"] for a in q.get_all_parent_artifacts(h("scores"))} == {
        h("m2"),
        h("test.csv"),
        h("train.csv"),
        h("raw"),
    }
    assert {a["hash"] for a in q.get_one_hop_child_artifacts(h("train.csv"))} == {h("m1"), h("m2")}
    assert {a["hash"] for a in q.get_all_child_artifacts(h("raw"))} == {
        h("train.csv"),
        h("test.csv"),
        h("m1"),
        h("m2"),
        h("scores"),
    }
    assert [e["id"] for e in q.get_one_hop_parent_executions(h("scores"))] == [ids["eval"]]
    assert [e["id"] for e in q.get_all_parent_executions(h("scores"))][0] == ids["eval"]
    assert {e["id"] for e in q.get_all_parent_executions(h("scores"))} == {ids["eval"], ids["train2"], ids["prep"]}
    assert {e["id"] for e in q.get_all_child_executions(h("raw"))} == {
        ids[n] for n in ("prep", "train1", "train2", "eval")
    }
    # CMF's md5 identity and the blake3 of the same bytes are one artifact.
    assert q.get_one_hop_parent_executions(MD5) == []
    assert {e["id"] for e in q.get_one_hop_child_executions(MD5)} == {ids["other"], ids["uses"]}
    assert {a["hash"] for a in q.get_one_hop_child_artifacts("data/shared.csv:" + "ab" * 16)} == {
        h("iris.csv"),
        h("iris-model"),
    }


def test_step_metrics_and_frames(q: Any) -> None:
    ids = q.ids
    assert q.get_step_metrics(ids["train1"]) == [
        {"name": "loss", "step": 0, "value": 1.0},
        {"name": "loss", "step": 1, "value": 0.5},
        {"name": "loss", "step": 2, "value": 0.3},
    ]
    assert q.get_metrics(ids["train1"][:12]) == q.get_step_metrics(ids["train1"])
    assert q.get_metrics(h("m1")) == q.get_step_metrics(ids["train1"])  # via the producer of an artifact
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(CmfgitError, match="needs pandas"):
            q.get_all_executions_in_stage("train", as_frame=True)
    else:
        frame = q.get_all_executions_in_stage("train", as_frame=True)
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
        assert {a["hash"] for a in side.get_all_child_artifacts(h("x"))} == {h("y"), h("z")}
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
        assert q.find_producer_execution("model.pkl")["id"] == ids["again"]
        assert [e["id"] for e in q.find_producer_executions("model.pkl")] == by_start
        assert q.find_producer_execution(h(names[0]))["id"] == ids["again"]
        assert q.find_producer_execution(h(names[-1]))["id"] == ids[names[-1]]
        assert [e["id"] for e in q.get_one_hop_parent_executions("model.pkl")] == by_start
        used = q.get_all_executions_for_artifact("model.pkl")
        assert [u["id"] for u in used] == by_start and {u["event"] for u in used} == {"OUTPUT"}
        users = q.get_all_executions_for_artifact(h("data"))
        assert [u["id"] for u in users] == [ids[n] for n in names]
