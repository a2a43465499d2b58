"""CMF ids of records not from CMF are the clone's, numbered across the whole scope, and stay put (issue 14).

MLMD numbers every object of a store once, in the order it arrives. cmfgit's CMF view
(``cmfgit export --format cmf-json`` and ``CmfQuery``'s CMF methods) does the same for
records that carry no CMF ids: one sequence per kind over every pipeline, kept in the clone,
so an execution keeps its id when another pipeline's records arrive, even ones that sort
before it by name and by time (a pull), and the export and the query give it the same id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import cmfgit, make_repo
from qhelp import art, execution, put, ts

from cmfgit.query import CmfQuery

PANDAS = "the CMF query methods need pandas: pip install 'cmfgit[cmf]'"
SET3 = Path(__file__).parent / "fixtures" / "cmf-set3"


def exported_ids(root: Path, pipeline: str) -> dict[str, dict[str, int]]:
    """What ids a CMF tool reading `cmfgit export` of ``pipeline`` sees, by what they number."""
    doc = json.loads(cmfgit(root, "export", "--format", "cmf-json", "-P", pipeline).stdout)
    (p,) = doc["Pipeline"]
    out: dict[str, dict[str, int]] = {"contexts": {p["name"]: p["id"]}, "executions": {}, "artifacts": {}}
    for stage in p["stages"]:
        out["contexts"][stage["name"]] = stage["id"]
        for e in stage["executions"]:
            out["executions"][e["properties"]["Execution_uuid"]] = e["id"]
            for ev in e["events"]:
                a = ev["artifact"]
                out["artifacts"][a["uri"]] = a["id"]
    return out


def queried_ids(root: Path) -> dict[str, dict[str, int]]:
    """The same, as CmfQuery's CMF methods see them (every pipeline of the checkout)."""
    with CmfQuery(root) as q:
        view = q.cmf_view()
        return {
            "contexts": {c.name: c.id for c in [*view.pipelines.values(), *view.stages.values()]},
            "executions": {str(e.properties["Execution_uuid"]): e.id for e in view.executions.values()},
            "artifacts": {a.uri: a.id for a in view.artifacts.values()},
        }


def within(ids: dict[str, dict[str, int]], other: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {kind: {k: v for k, v in ids[kind].items() if k in other[kind]} for kind in ids}


def zeta(root: Path) -> None:
    put(
        root,
        execution("prep", [art("raw")], [art("clean")], pipeline="zeta", started_at=ts(100)),
        execution("train", [art("clean")], [art("m", "model", "model.pkl")], pipeline="zeta", started_at=ts(101)),
    )


def alpha(root: Path) -> None:
    # Sorts before zeta by pipeline name and by time, and shares zeta's raw input.
    put(
        root,
        execution("prep", [art("raw")], [art("a-clean")], pipeline="alpha", started_at=ts(1)),
        execution("train", [art("a-clean")], [art("am", "model")], pipeline="alpha", started_at=ts(2)),
        execution("train", [art("a-clean")], [art("am2", "model")], pipeline="alpha", started_at=ts(3)),
    )


def test_ids_stay_when_another_pipelines_records_arrive(tmp_path: Path) -> None:
    pytest.importorskip("pandas", reason=PANDAS)
    root = make_repo(tmp_path / "repo")
    zeta(root)
    before = exported_ids(root, "zeta")
    assert within(queried_ids(root), before) == before  # the query's ids are the export's

    alpha(root)
    assert exported_ids(root, "zeta") == before  # zeta's export: the same ids
    queried = queried_ids(root)
    assert within(queried, before) == before  # and the query's: zeta did not move
    other = exported_ids(root, "alpha")
    assert within(queried, other) == other
    # One numbering across the scope: alpha's objects got ids of their own, except the artifact
    # both pipelines read, which is one CMF object with one id.
    for kind in ("contexts", "executions"):
        assert not set(other[kind].values()) & set(before[kind].values()), kind
    shared = set(other["artifacts"]) & set(before["artifacts"])
    assert len(shared) == 1 and all(other["artifacts"][u] == before["artifacts"][u] for u in shared)
    assert not {v for u, v in other["artifacts"].items() if u not in shared} & set(before["artifacts"].values())

    # New runs of zeta get new ids; the old ones keep theirs.
    put(root, execution("train", [art("clean")], [art("m5", "model")], pipeline="zeta", started_at=ts(0)))
    again = exported_ids(root, "zeta")
    assert within(again, before) == before and len(again["executions"]) == 3


def test_ids_stay_after_a_pull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pandas", reason=PANDAS)
    from sites import clone_site, isolate, pull, push, record, seed_remote

    isolate(monkeypatch, tmp_path)
    _, url = seed_remote(tmp_path)
    site_a = clone_site(tmp_path, url, "dc1")
    site_b = clone_site(tmp_path, url, "edge7")
    record(site_b, "alpha", "prep", outputs={"data/a.csv": "a\n"})  # first in time, first by name
    record(site_b, "alpha", "train", inputs=("data/a.csv",), outputs={"data/am.pkl": "am\n"})
    push(site_b)
    record(site_a, "zeta", "prep", outputs={"data/z.csv": "z\n"})
    record(site_a, "zeta", "train", inputs=("data/z.csv",), outputs={"data/zm.pkl": "zm\n"})
    before = exported_ids(site_a, "zeta")
    assert within(queried_ids(site_a), before) == before

    pull(site_a)
    assert sorted(json.loads(cmfgit(site_a, "pipelines", "--json").stdout), key=str)  # alpha arrived
    assert exported_ids(site_a, "alpha")["executions"]
    assert exported_ids(site_a, "zeta") == before
    assert within(queried_ids(site_a), before) == before


def test_new_ids_go_above_the_imported_cmf_ids(tmp_path: Path) -> None:
    pytest.importorskip("pandas", reason=PANDAS)
    root = make_repo(tmp_path / "repo")
    cmfgit(root, "import", str(SET3 / "mlmd"))  # CMF's own ids: executions 1-6, artifacts 1-15, contexts 1-7
    zeta(root)  # recorded after, in a pipeline that sorts after the imported ones
    mine = exported_ids(root, "zeta")
    theirs = [exported_ids(root, p) for p in ("Test-env", "test-execution-update")]
    for kind in ("contexts", "executions", "artifacts"):
        imported = {i for ids in theirs for i in ids[kind].values()}
        assert min(mine[kind].values()) > max(imported), kind
    assert within(queried_ids(root), mine) == mine
    set3_ids = json.loads((SET3 / "Test-env.json").read_text())["Pipeline"][0]["id"]
    assert exported_ids(root, "Test-env")["contexts"]["Test-env"] == set3_ids  # CMF's ids kept


def test_pure_build_still_numbers_from_one() -> None:
    """cmf_export.build without a clone (tests, tools) numbers its document alone, as before."""
    from cmfgit import cmf_export

    recs: list[tuple[str, dict[str, Any]]] = [
        ("r1", execution("prep", [art("raw")], [art("clean")], pipeline="zeta", started_at=ts(1)))
    ]
    doc = cmf_export.build(recs, "zeta")
    (p,) = doc["Pipeline"]
    assert p["id"] == 1 and p["stages"][0]["executions"][0]["id"] == 1
