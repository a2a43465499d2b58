"""``duration`` in --where and --sort: seconds from started_at to ended_at (null without
both), the same number the runs API shows, in CmfQuery, ``cmfgit log`` and the UI API,
through both of the planner's plans and across pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import cmfgit, make_repo
from qhelp import execution, put

from cmfgit import compare
from cmfgit import query as query_module
from cmfgit.query import CmfQuery
from cmfgit.ui import api
from cmfgit.where import WhereError

# (started_at, ended_at): durations 0, 0.5, 2, 2 (a tie), 61.000001, 3599.5, and two
# runs without one (no end yet).
TIMES: list[tuple[str, str | None]] = [
    ("2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z"),
    ("2026-01-01T00:01:00.000000Z", "2026-01-01T00:01:00.500000Z"),
    ("2026-01-01T00:02:00.000000Z", "2026-01-01T00:02:02.000000Z"),
    ("2026-01-01T00:03:00.250000Z", "2026-01-01T00:03:02.250000Z"),
    ("2026-01-01T00:04:59.999999Z", "2026-01-01T00:06:01.000000Z"),
    ("2026-01-01T00:05:00.500000Z", "2026-01-01T01:05:00.000000Z"),
    ("2026-01-01T00:06:00.000000Z", None),
    ("2026-01-01T00:07:00.000000Z", None),
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = make_repo(tmp_path_factory.mktemp("duration") / "repo")
    records = []
    for i, (started, ended) in enumerate(TIMES):
        record = execution("train", pipeline="p", params={"i": i}, started_at=started)
        record["ended_at"] = ended
        records.append(record)
    return root, put(root, *records)


def durations(q: CmfQuery, where: str | None = None, sort: str | None = None, **kw: Any) -> list[float | None]:
    return [compare.duration(e.get("started_at"), e.get("ended_at")) for e in q.executions(where, sort=sort, **kw)]


@pytest.fixture(params=["selective", "broad"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "broad":
        monkeypatch.setattr(query_module, "ESTIMATE_CAP", 1)
    return str(request.param)


def test_where_compares_the_seconds(repo: tuple[Path, list[str]], plan: str) -> None:
    root, _ = repo
    with CmfQuery(root, warn=False) as q:
        assert sorted(durations(q, "duration > 2")) == [61.000001, 3599.5]
        assert sorted(durations(q, "duration >= 2")) == [2.0, 2.0, 61.000001, 3599.5]
        assert sorted(durations(q, "duration < 1")) == [0.0, 0.5]
        assert durations(q, "duration == 0.5") == [0.5]
        assert durations(q, "duration in (61.000001, 0)") == [61.000001, 0.0]
        assert durations(q, "duration == null") == [None, None]
        assert len(durations(q, "duration != null")) == 6
        # a missing duration fails every comparison; `not` makes it true
        assert sorted(durations(q, "not duration > 1"), key=str) == sorted([0.0, 0.5, None, None], key=str)
        assert durations(q, "duration > 1 and params.i == 5") == [3599.5]
        assert q.count_executions("duration > 1") == 4
        assert q.count_executions("duration > 1 and stage == 'train'") == 4


def test_sort_orders_by_seconds_missing_last(repo: tuple[Path, list[str]], plan: str) -> None:
    root, ids = repo
    with CmfQuery(root, warn=False) as q:
        up = q.executions(sort="duration")
        # ties (the two 2s) newest first, as every sort breaks them; no duration: last, newest first
        assert [e["params"]["i"] for e in up] == [0, 1, 3, 2, 4, 5, 7, 6]
        down = q.executions(sort="-duration")
        assert [e["params"]["i"] for e in down] == [5, 4, 3, 2, 1, 0, 7, 6]
        for sort in ("duration", "-duration"):
            whole = [e["id"] for e in q.executions(sort=sort)]
            for size in (1, 2, 4):
                pages: list[str] = []
                for offset in range(0, len(whole) + size, size):
                    pages += [e["id"] for e in q.executions(sort=sort, limit=size, offset=offset)]
                assert pages == whole
            assert [e["id"] for e in q.executions("duration > 0", sort=sort, limit=2, offset=1)] == [
                i for i in whole if i in {ids[1], ids[2], ids[3], ids[4], ids[5]}
            ][1:3]


def test_duration_is_a_number(repo: tuple[Path, list[str]]) -> None:
    root, _ = repo
    with CmfQuery(root, warn=False) as q:
        with pytest.raises(WhereError) as caught:
            q.executions("duration > '2'")
        assert "'duration' is a number" in caught.value.message
        assert caught.value.pos == 11


def test_log_and_the_runs_api(repo: tuple[Path, list[str]]) -> None:
    root, ids = repo
    out = json.loads(cmfgit(root, "log", "--json", "--where", "duration > 1.5", "--sort", "-duration").stdout)
    assert [e["id"] for e in out] == [ids[5], ids[4], ids[3], ids[2]]
    out = json.loads(cmfgit(root, "log", "--json", "--sort", "duration", "-n", "3").stdout)
    assert [e["id"] for e in out] == [ids[0], ids[1], ids[3]]
    bad = cmfgit(root, "log", "--where", "duration ~ '1*'", check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "is a number" in bad.stderr
    with CmfQuery(root, warn=False) as q:
        page = api.runs(q, where="duration >= 0", sort="-duration", limit=4)
        assert page["total"] == 6
        assert [r["duration"] for r in page["rows"]] == [3599.5, 61.000001, 2.0, 2.0]
        every = api.runs(q, sort="duration")["rows"]
        assert [r["duration"] for r in every] == [0.0, 0.5, 2.0, 2.0, 61.000001, 3599.5, None, None]
        for where, test in (("duration > 2", lambda d: d > 2), ("duration <= 2", lambda d: d <= 2)):
            rows = api.runs(q, where=where)["rows"]
            assert rows and all(test(r["duration"]) for r in rows)


def test_the_index_has_the_duration_sort(repo: tuple[Path, list[str]]) -> None:
    """--sort duration walks an index on the very expression the query sorts by (a million
    runs would otherwise be computed and sorted for one page)."""
    from cmfgit.where import DURATION_SQL

    q = CmfQuery(repo[0])
    try:
        detail = " ".join(
            str(row[-1])
            for row in q.db.execute(
                f"EXPLAIN QUERY PLAN SELECT rowid FROM executions e ORDER BY {DURATION_SQL} LIMIT 5"
            )
        )
        assert "ex_duration" in detail, detail
        assert durations(q, sort="duration")[:4] == [0.0, 0.5, 2.0, 2.0]
    finally:
        q.close()
