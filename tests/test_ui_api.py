"""The UI's JSON API, through a real server on 127.0.0.1 over a real repository (cmfgit/ui/api.py)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import cmfgit, make_repo
from uihelp import CLEAN_1, CLEAN_2, COMMIT, MODEL, MODEL_BAD, RAW, api, get, lineage_repo, serving

from cmfgit.ui.api import commit_url, natural, web_url

TRAINS = ("train_failed", "train_c", "train_b", "train_a")  # newest first


@pytest.fixture
def wine(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = make_repo(tmp_path / "wine")
    return root, lineage_repo(root)


def q(text: str) -> str:
    return quote(text, safe="")


def test_info(wine: tuple[Path, dict[str, str]]) -> None:
    root, ids = wine
    with serving(root) as srv:
        info = api(srv, "info")
    assert info["name"] == "wine"
    assert info["scope"] == "the checkout"
    assert info["executions"] == len(ids)
    assert info["records"] == len(ids)
    assert info["unreadable"] == 0
    assert info["commit_url"] is None  # no remote
    assert info["version"]
    assert info["generated_at"].endswith("Z")


def test_runs_newest_first_with_status_duration_and_columns(wine: tuple[Path, dict[str, str]]) -> None:
    root, ids = wine
    with serving(root) as srv:
        page = api(srv, "runs")
    assert page["total"] == 7 and page["offset"] == 0 and page["limit"] == 50
    order = ["evaluate", *TRAINS, "prepare2", "prepare1"]
    assert [r["id"] for r in page["rows"]] == [ids[n] for n in order]
    rows = {r["id"]: r for r in page["rows"]}
    failed = rows[ids["train_failed"]]
    assert failed["status"] == "failed" and failed["exit_code"] == 1
    train_a = rows[ids["train_a"]]
    assert train_a["status"] == "ok"
    assert train_a["duration"] == 12.0  # ts(30) to ts(42)
    assert (train_a["pipeline"], train_a["stage"], train_a["site"]) == ("wine", "train", "site-a")
    # Keys in natural order: lr_2 before lr_10.
    assert page["keys"]["params"] == ["epochs", "lr", "lr_2", "lr_10"]
    assert page["keys"]["metrics"] == ["acc", "f1", "loss"]
    assert page["keys"]["tags"] == []
    assert page["columns"]["params"] == ["epochs", "lr", "lr_2", "lr_10"]
    assert train_a["params"] == {"epochs": 5, "lr": 0.1, "lr_2": 2, "lr_10": 10}
    assert list(train_a["params"]) == ["epochs", "lr", "lr_2", "lr_10"]


def test_runs_chosen_columns(wine: tuple[Path, dict[str, str]]) -> None:
    root, ids = wine
    with serving(root) as srv:
        page = api(srv, "runs?params=lr_10,lr&metrics=acc")
    assert page["columns"] == {"params": ["lr_10", "lr"], "metrics": ["acc"]}
    rows = {r["id"]: r for r in page["rows"]}
    assert rows[ids["train_b"]]["params"] == {"lr_10": 10, "lr": 0.01}
    assert rows[ids["train_b"]]["metrics"] == {"acc": 0.9}
    assert rows[ids["prepare1"]]["params"] == {}


def test_runs_where_sort_and_paging(wine: tuple[Path, dict[str, str]]) -> None:
    root, ids = wine
    with serving(root) as srv:
        small = api(srv, "runs?where=" + q("params.lr < 0.05"))
        by_acc = api(srv, "runs?sort=metrics.acc&where=" + q('stage == "train"'))
        by_acc_desc = api(srv, "runs?sort=-metrics.acc&where=" + q('stage == "train"'))
        natural_sort = api(srv, "runs?sort=-params.lr_2&where=" + q("params.lr_2 >= 2"))
        first = api(srv, "runs?where=" + q('stage == "train"') + "&offset=0&limit=2")
        second = api(srv, "runs?where=" + q('stage == "train"') + "&offset=2&limit=2")
        past = api(srv, "runs?offset=100&limit=10")
        failed = api(srv, "runs?where=" + q("exit_code != 0"))
    assert small["total"] == 2
    assert [r["id"] for r in small["rows"]] == [ids["train_c"], ids["train_b"]]
    # Ascending by acc; the failed run has no acc and comes last.
    assert [r["id"] for r in by_acc["rows"]] == [ids[n] for n in ("train_a", "train_c", "train_b", "train_failed")]
    assert [r["id"] for r in by_acc_desc["rows"]] == [ids[n] for n in ("train_b", "train_c", "train_a", "train_failed")]
    assert "acc" in by_acc["columns"]["metrics"]
    assert [r["params"]["lr_2"] for r in natural_sort["rows"]] == [3, 2, 2]
    assert first["total"] == second["total"] == 4
    assert [r["id"] for r in first["rows"] + second["rows"]] == [ids[n] for n in TRAINS]
    assert (second["offset"], second["limit"]) == (2, 2)
    assert past["total"] == 7 and past["rows"] == []
    assert [r["id"] for r in failed["rows"]] == [ids["train_failed"]]


def test_runs_errors_carry_the_caret_position(wine: tuple[Path, dict[str, str]]) -> None:
    root, _ids = wine
    with serving(root) as srv:
        status, headers, body = get(srv, "api/runs?where=" + q("params.lr > "))
        typo_status, _h, typo = get(srv, "api/runs?where=" + q('stage == "train" and params.lrr > 1'))
        sort_status, _h, sort = get(srv, "api/runs?sort=-params.nope")
        limit_status, _h, limit = get(srv, "api/runs?limit=lots")
        neg_status, _h, neg = get(srv, "api/runs?offset=-1")
    assert status == 400
    assert headers["Content-Type"].startswith("application/json")
    assert body["error"].startswith("--where: ") and "\n" not in body["error"]
    assert body["where"] == {"text": "params.lr > ", "pos": 12}
    assert typo_status == 400
    assert "did you mean 'params.lr'" in typo["error"]
    assert typo["where"] == {"text": 'stage == "train" and params.lrr > 1', "pos": 21}
    assert sort_status == 400 and sort["where"] is None and "nope" in sort["error"]
    assert limit_status == 400 and "limit" in limit["error"]
    assert neg_status == 400 and "offset" in neg["error"]


def test_run(wine: tuple[Path, dict[str, str]]) -> None:
    root, ids = wine
    rid = ids["train_a"]
    with serving(root) as srv:
        found = api(srv, f"run?id={rid[:10]}")
        plain = api(srv, f"run?id={ids['train_c']}")
        missing_status, _h, missing = get(srv, "api/run?id=abcdef0123")
        bad_status, _h, bad = get(srv, "api/run?id=zz")
        none_status, _h, none = get(srv, "api/run")
    shown = cmfgit(root, "show", rid, "--json").stdout
    import json

    assert found["run"] == json.loads(shown)  # exactly `cmfgit show --json`
    assert found["run"]["id"] == rid
    assert found["run"]["params"]["lr"] == 0.1
    assert found["run"]["metadata_commit"] == {"commit": None, "pending": True}
    assert found["steps"] == {"loss": [[0, 1.0], [1, 0.7], [2, 0.5]]}
    assert found["code_url"] == f"https://github.com/acme/wine/commit/{COMMIT}"
    assert plain["steps"] == {} and plain["code_url"] is None
    assert missing_status == 404 and "abcdef0123" in missing["error"]
    assert bad_status == 400 and "not a record id" in bad["error"]
    assert none_status == 400 and "id" in none["error"]


def test_compare(wine: tuple[Path, dict[str, str]]) -> None:
    root, ids = wine
    picked = [ids["train_a"], ids["train_b"][:12], ids["train_c"]]
    with serving(root) as srv:
        table = api(srv, "compare?ids=" + ",".join(picked))
        one_status, _h, one = get(srv, "api/compare?ids=" + ids["train_a"])
    assert [r["id"] for r in table["runs"]] == [ids["train_a"], ids["train_b"], ids["train_c"]]
    assert table["runs"][0]["params"] == {"lr": 0.1, "lr_2": 2, "lr_10": 10, "epochs": 5}
    params = {row["key"]: row for row in table["params"]}
    assert params["lr"]["values"] == [0.1, 0.01, 0.001]
    assert params["lr"]["changed"] is True
    assert params["lr_10"]["changed"] is False
    assert params["lr"]["delta"][0] is None
    assert params["lr"]["delta"][1] == pytest.approx(-0.09)
    metrics = {row["key"]: row for row in table["metrics"]}
    assert metrics["acc"]["delta"][1] == pytest.approx(0.1)
    assert table["steps"]["loss"] == {
        ids["train_a"]: [[0, 1.0], [1, 0.7], [2, 0.5]],
        ids["train_b"]: [[0, 1.0], [1, 0.4], [2, 0.3]],
    }
    assert one_status == 400 and "at least 2" in one["error"]


def test_lineage(wine: tuple[Path, dict[str, str]]) -> None:
    root, ids = wine
    with serving(root) as srv:
        up = api(srv, "lineage?target=" + q("models/model.pkl") + "&dir=up")
        shallow = api(srv, f"lineage?target={ids['evaluate']}&dir=up&depth=0")
        down = api(srv, "lineage?target=" + q(RAW["hash"][:20]) + "&dir=down&depth=1")
        bad_status, _h, bad = get(srv, "api/lineage?target=models/model.pkl&dir=sideways")
        none_status, _h, none = get(srv, "api/lineage?target=nothing/here.csv")
    nodes = {n["id"]: n for n in up["nodes"]}
    # Every recorded version of the path is a root; the failed run made the second one.
    assert sorted(up["roots"]) == sorted([MODEL["hash"], MODEL_BAD["hash"]])
    for name in ("train_a", "train_b", "train_c", "train_failed", "prepare2"):
        assert nodes[ids[name]]["kind"] == "execution"
    assert ids["prepare1"] not in nodes and ids["evaluate"] not in nodes
    assert nodes[ids["train_failed"]]["status"] == "failed"
    assert nodes[ids["train_a"]]["label"] == "wine/train" and nodes[ids["train_a"]]["stage"] == "train"
    assert nodes[CLEAN_2["hash"]]["kind"] == "artifact"
    assert nodes[CLEAN_2["hash"]]["path"] == "data/clean.csv" and nodes[CLEAN_2["hash"]]["label"] == "clean.csv"
    assert nodes[RAW["hash"]]["type"] == "dataset"
    edges = {(e["source"], e["target"], e["role"]) for e in up["edges"]}
    assert (CLEAN_2["hash"], ids["train_a"], "input") in edges
    assert (ids["train_a"], MODEL["hash"], "output") in edges
    assert (ids["prepare2"], CLEAN_2["hash"], "output") in edges
    assert up["truncated"] is False
    # depth 0 from an execution: itself and its inputs.
    assert {n["id"] for n in shallow["nodes"]} == {ids["evaluate"], MODEL["hash"]}
    assert shallow["roots"] == [ids["evaluate"]]
    # down one hop from raw: both prepares and what they wrote.
    assert {n["id"] for n in down["nodes"]} == {
        RAW["hash"],
        ids["prepare1"],
        ids["prepare2"],
        CLEAN_1["hash"],
        CLEAN_2["hash"],
    }
    assert bad_status == 400 and "dir" in bad["error"]
    assert none_status == 400 and "nothing/here.csv" in none["error"]


def test_lineage_truncates_large_graphs(wine: tuple[Path, dict[str, str]]) -> None:
    root, ids = wine
    from cmfgit.query import CmfQuery
    from cmfgit.ui import api as ui_api

    with CmfQuery(root) as query:
        cut = ui_api.lineage(query, target=ids["evaluate"], dir="up", max_nodes=3)
    assert cut["truncated"] is True
    assert len(cut["nodes"]) == 3
    kept = {n["id"] for n in cut["nodes"]}
    assert all(e["source"] in kept and e["target"] in kept for e in cut["edges"])


def test_artifacts(wine: tuple[Path, dict[str, str]]) -> None:
    root, _ids = wine
    with serving(root) as srv:
        every = api(srv, "artifacts")
        models = api(srv, "artifacts?type=model")
        cleans = api(srv, "artifacts?path=clean")
        paged = api(srv, "artifacts?offset=1&limit=2")
    assert every["total"] == 6
    assert every["types"] == ["dataset", "metrics", "model"]
    rows = {r["hash"]: r for r in every["rows"]}
    assert rows[MODEL["hash"]]["path"] == "models/model.pkl"
    assert rows[MODEL["hash"]]["type"] == "model"
    assert rows[MODEL["hash"]]["size"] == len("model-1")
    assert rows[MODEL["hash"]]["uses"] == 4  # three trains wrote it, evaluate read it
    assert rows[RAW["hash"]]["last_used"] == "2026-01-01T00:00:20.000000Z"
    # Most recently used first: evaluate's two (ties by hash), then the failed run's two.
    assert {r["path"] for r in every["rows"][:2]} == {"reports/eval.json", "models/model.pkl"}
    assert {r["hash"] for r in every["rows"][2:4]} == {MODEL_BAD["hash"], CLEAN_2["hash"]}
    assert {r["hash"] for r in models["rows"]} == {MODEL["hash"], MODEL_BAD["hash"]}
    assert models["total"] == 2
    assert {r["hash"] for r in cleans["rows"]} == {CLEAN_1["hash"], CLEAN_2["hash"]}
    assert cleans["total"] == 2
    assert [r["hash"] for r in paged["rows"]] == [r["hash"] for r in every["rows"][1:3]]
    assert paged["total"] == 6


def test_artifact_versions_and_use(wine: tuple[Path, dict[str, str]]) -> None:
    root, ids = wine
    with serving(root) as srv:
        found = api(srv, "artifact?hash=" + q(CLEAN_2["hash"][:16]))
        missing_status, _h, missing = get(srv, "api/artifact?hash=blake3:0000")
    assert found["artifact"]["hash"] == CLEAN_2["hash"]
    assert found["artifact"]["path"] == "data/clean.csv"
    assert found["artifact"]["type"] == "dataset"
    assert found["artifact"]["size"] == len("clean-2")
    # Every version of its path, newest first, with the run that made it.
    assert [(v["hash"], v["produced_by"]) for v in found["versions"]] == [
        (CLEAN_2["hash"], ids["prepare2"]),
        (CLEAN_1["hash"], ids["prepare1"]),
    ]
    assert found["versions"][1]["first_seen"] == "2026-01-01T00:00:10.000000Z"
    used = [(u["execution"], u["role"], u["stage"]) for u in found["used_by"]]
    assert used == [
        (ids["train_failed"], "input", "train"),
        (ids["train_c"], "input", "train"),
        (ids["train_b"], "input", "train"),
        (ids["train_a"], "input", "train"),
        (ids["prepare2"], "output", "prepare"),
    ]
    assert found["used_by"][0]["pipeline"] == "wine"
    assert missing_status == 400 and "no artifact matches" in missing["error"]


def test_pipelines(wine: tuple[Path, dict[str, str]]) -> None:
    root, _ids = wine
    with serving(root) as srv:
        found = api(srv, "pipelines")
    (wine_p,) = found["pipelines"]
    assert wine_p["name"] == "wine"
    stages = {s["name"]: s for s in wine_p["stages"]}
    assert stages["train"]["runs"] == 4 and stages["train"]["failed"] == 1
    assert stages["prepare"]["runs"] == 2 and stages["prepare"]["failed"] == 0
    assert stages["evaluate"]["last"] == "2026-01-01T00:01:10.000000Z"
    assert wine_p["edges"] == [{"from": "prepare", "to": "train"}, {"from": "train", "to": "evaluate"}]


def test_unknown_endpoint(wine: tuple[Path, dict[str, str]]) -> None:
    root, _ids = wine
    with serving(root) as srv:
        status, _h, body = get(srv, "api/nothing")
    assert status == 404 and body == {"error": "no such endpoint: 'nothing'", "where": None}


def test_a_run_logged_while_serving_shows_up(wine: tuple[Path, dict[str, str]]) -> None:
    root, _ids = wine
    with serving(root, refresh_interval=0) as srv:
        assert api(srv, "runs")["total"] == 7
        (pipeline,) = api(srv, "pipelines")["pipelines"]  # (kept until the index changes)
        assert "late" not in {s["name"] for s in pipeline["stages"]}
        cmfgit(root, "log-run", "--stage", "late", "-p", "lr=0.5", "--", "true")
        page = api(srv, "runs")  # the very next request
        assert page["total"] == 8
        assert page["rows"][0]["stage"] == "late" and page["rows"][0]["params"] == {"lr": 0.5}
        assert api(srv, "info")["executions"] == 8
        (pipeline,) = api(srv, "pipelines")["pipelines"]
        assert "late" in {s["name"] for s in pipeline["stages"]}


def test_the_default_refresh_sees_new_runs_too(wine: tuple[Path, dict[str, str]]) -> None:
    """At most one refresh a second: a request after that sees the new run."""
    root, _ids = wine
    with serving(root) as srv:
        assert api(srv, "runs")["total"] == 7
        cmfgit(root, "log-run", "--stage", "late", "--", "true")
        deadline = time.monotonic() + 30
        while api(srv, "runs")["total"] != 8:
            assert time.monotonic() < deadline, "the new run never showed up"
            time.sleep(0.2)


def test_tags_are_keys(wine: tuple[Path, dict[str, str]]) -> None:
    root, ids = wine
    cmfgit(root, "tag", ids["train_b"], "best=yes")
    with serving(root) as srv:
        page = api(srv, "runs?where=" + q('tags.best == "yes"'))
    assert page["keys"]["tags"] == ["best"]
    assert [r["id"] for r in page["rows"]] == [ids["train_b"]]


# -- pure helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("git@github.com:acme/wine.git", "https://github.com/acme/wine/commit/X"),
        ("https://github.com/acme/wine", "https://github.com/acme/wine/commit/X"),
        (
            "ssh://git@gitlab.example.org:2222/group/sub/wine.git",
            "https://gitlab.example.org/group/sub/wine/-/commit/X",
        ),
        ("https://gitlab.com/group/wine.git/", "https://gitlab.com/group/wine/-/commit/X"),
        ("https://codeberg.org/acme/wine.git", "https://codeberg.org/acme/wine/commit/X"),
        ("http://gitea.local:3000/acme/wine.git", "http://gitea.local:3000/acme/wine/commit/X"),
        ("/srv/git/wine.git", None),
        ("file:///srv/git/wine.git", None),
        ("https://example.com/acme/wine.git", None),
        ("git@github.com:../../x", None),
        (None, None),
    ],
)
def test_commit_url(remote: str | None, url: str | None) -> None:
    assert commit_url(remote, "X") == url


def test_web_url_drops_credentials() -> None:
    assert web_url("https://user:secret@github.com/acme/wine.git") == ("https://github.com/acme/wine", "github")


def test_natural_order() -> None:
    assert natural(["lr_10", "lr_2", "lr", "a10b2", "a2b10"]) == ["a2b10", "a10b2", "lr", "lr_2", "lr_10"]


def test_a_ref_scope_serves_that_revision(wine: tuple[Path, dict[str, str]]) -> None:
    from conftest import git

    from cmfgit.index import Scope

    root, _ids = wine
    git(root, "add", ".cmf")
    git(root, "commit", "-q", "-m", "runs")
    cmfgit(root, "log-run", "--stage", "late", "--", "true")  # pending: not in HEAD
    with serving(root, Scope("ref", ref="HEAD")) as srv:
        info = api(srv, "info")
        page = api(srv, "runs")
    assert info["scope"] == "revision HEAD"
    assert page["total"] == 7 and "late" not in {r["stage"] for r in page["rows"]}
    with serving(root) as srv:
        assert api(srv, "runs")["total"] == 8


def test_scope_errors_are_one_line(wine: tuple[Path, dict[str, str]]) -> None:
    root, _ids = wine
    proc = cmfgit(root, "ui", "--global", "--no-browser", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "cmfgit: error: no global metadata branch here (refs/remotes/origin/cmf/global): "
        "run 'cmfgit global fetch origin' or 'cmfgit pull origin' first"
    ]
    proc = cmfgit(root, "ui", "--ref", "nosuch", "--no-browser", check=False)
    assert proc.returncode == 1 and proc.stderr.strip() == "cmfgit: error: unknown revision 'nosuch'"
