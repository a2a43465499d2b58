"""CmfQuery paging: ``offset=`` on the execution listings and ``count_executions``, the two
calls a page of runs (``cmfgit ui``'s runs API) is made of. Pages put end to end are the
whole listing, whatever the filter and sort, and the count is the length of that listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import make_repo
from qhelp import art, execution, put, ts

import cmfgit
from cmfgit import query as query_module
from cmfgit.errors import UsageError
from cmfgit.query import CmfQuery
from cmfgit.where import WhereError

N = 60


@pytest.fixture(scope="module")
def q(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = make_repo(tmp_path_factory.mktemp("paging") / "repo")
    records = []
    for i in range(N):
        params: dict[str, Any] = {"lr": [0.1, 0.01, 0.001][i % 3], "opt": ["adam", "sgd"][i % 2]}
        if i % 5 == 0:
            params["note"] = f"n{i % 10}"  # a key only some runs have
        metrics: dict[str, Any] = {"loss": round(1.0 - (i % 7) / 10, 2)}  # ties: 7 distinct values
        if i % 4:
            metrics["acc"] = round(0.5 + i / 200, 3)  # a quarter of the runs have no acc
        if i % 3 == 0:
            metrics["rows"] = 100 + i % 2  # prep runs only: no train run has it
        records.append(
            execution(
                ["prep", "train", "evaluate"][i % 3],
                [art(f"in{i % 4}")],
                [art(f"out{i}")],
                pipeline=["wine", "iris"][i % 2],
                params=params,
                metrics=metrics,
                started_at=ts(1000 + (i // 2) * 60),  # pairs start at the same second: ties in the default order
                exit_code=1 if i % 9 == 4 else 0,
                site=f"site-{i % 3}",
            )
        )
    ids = put(root, *records)
    cmfgit.tag(ids[3], {"status": "prod"}, repo=root)
    cmfgit.tag(ids[10], {"status": "prod"}, repo=root)
    cmfgit.tag(ids[11], {"status": "dev"}, repo=root)
    cmfgit.retract([ids[7]], reason="a bad run", repo=root)
    query = CmfQuery(root)
    query.ids = ids
    yield query
    query.close()


WHERES = [
    None,
    "stage == 'train'",
    "pipeline == 'wine' and stage == 'evaluate'",
    "params.lr == 0.01",
    "params.opt == 'adam' and metrics.loss < 0.5",
    "metrics.acc > 0.6",
    "metrics.acc >= 0.5 and stage != 'prep'",
    "exit_code != 0",
    "params.note ~ 'n*'",
    "params.lr in (0.1, 0.001) or metrics.loss == 1.0",
    "not stage == 'train'",
    "tags.status == 'prod'",
    "site == 'site-1' and params.lr <= 0.01 and metrics.loss > 0.3",
    "metrics.acc > 9",
]
SORTS = [
    *(None, "started_at", "-metrics.acc", "metrics.acc", "-metrics.loss", "params.lr", "-params.note", "stage"),
    *("-stage", "pipeline", "-site", "exit_code", "-params.opt", "params.opt", "-metrics.rows", "metrics.rows"),
]


def ids_of(q: Any, rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


@pytest.fixture(params=["selective", "broad"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the planner finds runs: "broad" makes no indexed term selective (as
    at a million runs), so the sort key's index is walked and counts read whole indexes."""
    if request.param == "broad":
        monkeypatch.setattr(query_module, "ESTIMATE_CAP", 1)
    return str(request.param)


@pytest.mark.parametrize("where", WHERES)
def test_pages_end_to_end_are_the_whole_listing(q: Any, where: str | None, plan: str) -> None:
    for sort in SORTS:
        whole = ids_of(q, q.executions(where, sort=sort))
        for size in (1, 7, 50):
            pages: list[str] = []
            for offset in range(0, len(whole) + size, size):
                page = ids_of(q, q.executions(where, sort=sort, limit=size, offset=offset))
                assert len(page) <= size
                pages += page
            assert pages == whole, (where, sort, size)
        # An offset alone: everything after it; the rowids agree with the records.
        assert ids_of(q, q.executions(where, sort=sort, offset=5)) == whole[5:]
        rowids = q.execution_rowids(where, sort=sort, limit=4, offset=3)
        assert [rid for rid, _ in q.execution_records(where, sort=sort, limit=4, offset=3)] == whole[3:7]
        assert len(rowids) == len(whole[3:7])


@pytest.mark.parametrize("where", WHERES)
def test_count_is_the_number_listed(q: Any, where: str | None, plan: str) -> None:
    assert q.count_executions(where) == len(q.executions(where))


def test_count_content(q: Any) -> None:
    assert q.count_executions() == N - 1  # the retracted run is neither listed nor counted
    assert q.ids[7] not in ids_of(q, q.executions())
    assert q.count_executions("stage == 'train'") == len([i for i in range(N) if i % 3 == 1 and i != 7])
    assert q.count_executions("tags.status == 'prod'") == 2
    assert q.count_executions("metrics.acc > 9") == 0
    assert q.count_executions(pipeline="iris") == len([i for i in range(N) if i % 2 and i != 7])
    assert q.count_executions(pipeline="iris", stage="train") == len([i for i in range(N) if i % 6 == 1 and i != 7])
    assert q.count_executions(stage="prep", where="params.lr == 0.1") == len([i for i in range(N) if i % 3 == 0])
    assert q.count_executions(since="2026-01-01T00:20:00Z") == len(q.executions(since="2026-01-01T00:20:00Z"))
    assert 0 < q.count_executions(since="2026-01-01T00:20:00Z") < N - 1


def test_page_content(q: Any) -> None:
    newest = q.executions(limit=3)
    assert [e["started_at"] for e in newest] == sorted((e["started_at"] for e in newest), reverse=True)
    second = q.executions(limit=3, offset=3)
    assert {e["id"] for e in second}.isdisjoint(e["id"] for e in newest)
    assert second[0]["started_at"] <= newest[-1]["started_at"]
    # Sorted by a metric some runs lack: the runs with it first, then the others, newest first.
    by_acc = q.executions(sort="-metrics.acc")
    with_acc = [e for e in by_acc if "acc" in e["metrics"]]
    assert by_acc[: len(with_acc)] == with_acc
    tail = q.executions(sort="-metrics.acc", offset=len(with_acc) + 2, limit=4)
    assert ids_of(q, tail) == ids_of(q, by_acc[len(with_acc) + 2 : len(with_acc) + 6])
    assert all("acc" not in e["metrics"] for e in tail)
    assert q.executions(offset=N + 10) == [] and q.executions(limit=5, offset=N - 1) == []
    assert q.executions(where="stage == 'train'", sort="-metrics.acc", limit=0, offset=2) == []


def test_bad_offsets_and_keys(q: Any) -> None:
    with pytest.raises(UsageError, match="offset must be >= 0"):
        q.executions(offset=-1)
    with pytest.raises(WhereError) as caught:
        q.count_executions("metrics.acc > 0.5 and params.lrr == 1")
    assert "no execution has param 'lrr'" in caught.value.message and "params.lr" in caught.value.message
    assert caught.value.pos == 22  # the caret under the unknown key, as log --where puts it
    with pytest.raises(WhereError):
        q.count_executions("stage ==")


def test_a_kept_count_follows_new_records(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    put(root, *(execution("train", params={"lr": 0.1}, started_at=ts(i)) for i in range(3)))
    q = CmfQuery(root)
    try:
        assert q.count_executions("params.lr == 0.1") == 3 == q.count_executions("params.lr == 0.1")
        put(root, execution("train", params={"lr": 0.1}, started_at=ts(10)))
        q._index.refresh_worktree()  # what a read does when files changed
        assert q.count_executions("params.lr == 0.1") == 4 == len(q.executions("params.lr == 0.1"))
    finally:
        q.close()
