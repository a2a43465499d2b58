"""Tags: annotation records on executions and artifacts, shown by the read commands,
filtered by --where, merged across branches, and deterministic whatever the order."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import cmfgit, git, make_repo
from qhelp import art, execution, h, put, ts

import cmfgit as api
from cmfgit import tags
from cmfgit.query import CmfQuery
from cmfgit.store import Store


def objects(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / ".cmf/objects").rglob("*.yaml")}


def run_json(root: Path, *args: str) -> Any:
    return json.loads(cmfgit(root, *args).stdout)


@pytest.fixture
def two_runs(repo: Path) -> tuple[Path, str, str]:
    a, b = put(
        repo,
        execution("prep", [art("raw")], [art("clean")], params={"lr": 0.1}, started_at=ts(1)),
        execution(
            "train", [art("clean")], [art("model", "model", "models/m.pkl")], params={"lr": 0.2}, started_at=ts(2)
        ),
    )
    return repo, a, b


def test_tag_set_list_remove(two_runs: tuple[Path, str, str]) -> None:
    root, a, b = two_runs
    out = run_json(root, "tag", b[:8], "status=production", "owner=ana", "--json")
    assert out["target"] == b and out["tags"] == {"owner": "ana", "status": "production"}
    note = Store(root / ".cmf/objects").get(out["annotation"])[1]
    assert note["schema"] == "cmfgit/annotation/1" and note["kind"] == "tag" and note["target"] == b
    assert note["body"] == {"owner": "ana", "status": "production"}

    before = objects(root)
    again = run_json(root, "tag", b[:8], "status=production", "--json")  # nothing changes: nothing written
    assert again["annotation"] is None and objects(root) == before

    removed = run_json(root, "tag", b[:8], "--remove", "owner", "--json")
    assert removed["tags"] == {"status": "production"}
    assert run_json(root, "tag", b[:8], "--json")["tags"] == {"status": "production"}
    assert cmfgit(root, "tag", b[:8]).stdout == "status=production\n"

    shown = run_json(root, "show", b[:8], "--json")
    assert shown["tags"] == {"status": "production"}
    assert "tags: status=production" in cmfgit(root, "show", b[:8]).stdout
    logged = {o["id"]: o["tags"] for o in run_json(root, "log", "--json")}
    assert logged == {a: {}, b: {"status": "production"}}
    assert "status=production" in cmfgit(root, "log").stdout
    assert "fsck: 4 record(s) ok" in cmfgit(root, "fsck").stdout


def test_where_and_sort_by_tags(two_runs: tuple[Path, str, str]) -> None:
    root, a, b = two_runs
    cmfgit(root, "tag", a[:8], "status=archived", "rank=2")
    cmfgit(root, "tag", b[:8], "status=production", "rank=1")

    def ids(*args: str) -> list[str]:
        return [o["id"] for o in run_json(root, "log", "--json", *args)]

    assert ids("--where", 'tags.status == "production"') == [b]
    assert ids("--where", 'tags.status ~ "*ed" or params.lr > 0.15') == [b, a]
    assert ids("--where", 'not tags.status == "production"') == [a]
    assert ids("--sort", "tags.rank") == [b, a] and ids("--sort", "-tags.rank") == [a, b]
    bad = cmfgit(root, "log", "--where", 'tags.stat == "x"', check=False)
    assert bad.returncode == 2 and "no execution has tag 'stat' (did you mean 'tags.status'?)" in bad.stderr
    with CmfQuery(root) as q:
        assert [o["id"] for o in q.executions('tags.status == "archived"')] == [a]
        assert q.keys("tags") == ["rank", "status"]


def test_tag_an_artifact_by_path_and_hash(two_runs: tuple[Path, str, str]) -> None:
    root, _a, _b = two_runs
    (root / "models").mkdir()
    (root / "models/m.pkl").write_text("model")  # the content recorded as h("model")
    out = run_json(root, "tag", "models/m.pkl", "approved=yes", "--json")
    assert out["target"] == h("model") and out["tags"] == {"approved": "yes"}
    assert run_json(root, "tag", h("model")[:16], "--json")["tags"] == {"approved": "yes"}
    arts = {x["hash"]: x["tags"] for x in run_json(root, "artifacts", "--json")}
    assert arts == {h("raw"): {}, h("clean"): {}, h("model"): {"approved": "yes"}}


def test_bad_tag_input_writes_nothing(two_runs: tuple[Path, str, str]) -> None:
    root, _a, b = two_runs
    put(root, execution("train", [art("clean")], [art("model2", "model", "models/m.pkl")], started_at=ts(3)))
    before = objects(root)
    for args, words, code in [
        ([b[:8], "novalue"], "is not KEY=VALUE", 2),
        ([b[:8], "bad name=1"], "is not a tag name", 2),
        ([b[:8], "a=1", "--remove", "a"], "both set and removed", 2),
        (["ffff0000", "a=1"], "no artifact, path or execution matches", 1),
        (["models/m.pkl", "a=1"], "names 2 artifact versions", 1),  # not in the tree: every recorded version
        ([b[:8], "a=1", "--bogus"], "No such option", 2),
    ]:
        proc = cmfgit(root, "tag", *args, check=False)
        assert proc.returncode == code, (args, proc.stderr)
        assert words in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    (root / "models").mkdir()
    (root / "models/m.pkl").write_text("retrained, never recorded")
    proc = cmfgit(root, "tag", "models/m.pkl", "approved=yes", check=False)
    assert proc.returncode == 1 and "its current content was never recorded" in proc.stderr
    assert objects(root) == before


def test_commit_commits_only_the_annotation(two_runs: tuple[Path, str, str]) -> None:
    root, _a, b = two_runs
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", "records")
    (root / "user.txt").write_text("staged by the user")
    git(root, "add", "user.txt")
    out = run_json(root, "tag", b[:8], "status=production", "--commit", "--json")
    rel = Store(root / ".cmf/objects").loose_path(out["annotation"]).relative_to(root).as_posix()
    assert git(root, "show", "--name-only", "--format=", "HEAD").split() == [rel]
    assert git(root, "diff", "--cached", "--name-only").split() == ["user.txt"]


def test_python_api(two_runs: tuple[Path, str, str]) -> None:
    root, _a, b = two_runs
    assert api.tag(b, {"status": "production", "epochs": 3}, repo=root) == {"epochs": "3", "status": "production"}
    assert api.tag(b[:10], remove=["epochs"], repo=root) == {"status": "production"}
    with CmfQuery(root) as q:
        assert q.tags_of(b) == {"status": "production"}
        assert q.execution(b)["tags"] == {"status": "production"}


def test_fold_is_order_independent_and_latest_wins() -> None:
    t = "e" * 64
    notes = [
        ("id3", {"kind": "tag", "target": t, "at": "2026-01-02T00:00:00.000000Z", "body": {"s": "b", "o": None}}),
        ("id1", {"kind": "tag", "target": t, "at": "2026-01-01T00:00:00.000000Z", "body": {"s": "a", "o": "x"}}),
        ("id2", {"kind": "tag", "target": t, "at": "2026-01-02T00:00:00.000000Z", "body": {"s": "c", "k": "1"}}),
        ("id0", {"kind": "label", "target": t, "at": "2027-01-01T00:00:00.000000Z", "body": {"s": "z"}}),
    ]
    for order in itertools.permutations(notes):
        # same `at` for id2 and id3: the greater id (id3) is applied last and wins
        assert tags.fold(order) == {t: {"k": "1", "s": "b"}}


def test_tags_merge_across_branches_and_latest_wins(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    (rid,) = put(root, execution("train", [art("d")], [art("m", "model")], started_at=ts(1)))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "run")
    git(root, "checkout", "-q", "-b", "left")
    cmfgit(root, "tag", rid[:8], "status=staging", "left=1", "--commit")
    git(root, "checkout", "-q", "main")
    git(root, "checkout", "-q", "-b", "right")
    cmfgit(root, "tag", rid[:8], "status=production", "right=1", "--commit")  # later: wins
    results = []
    for first, second in (("left", "right"), ("right", "left")):
        git(root, "checkout", "-q", "-B", f"m-{first}", first)
        git(root, "merge", "-q", "--no-edit", second)
        results.append(run_json(root, "tag", rid[:8], "--json")["tags"])
    assert results == [{"left": "1", "right": "1", "status": "production"}] * 2


def test_tags_travel_with_push_and_a_pulled_local_view(tmp_path: Path) -> None:
    from sites import clone_site, record, seed_remote

    _bare, url = seed_remote(tmp_path)
    lab = clone_site(tmp_path, url, "lab")
    rid = record(lab, "wine", "train")
    record(lab, "other", "train")
    cmfgit(lab, "tag", rid[:8], "status=production")
    cmfgit(lab, "push")
    analyst = clone_site(tmp_path, url, "analyst", branch="analysis")
    cmfgit(analyst, "pull", "--pipeline", "wine")
    assert run_json(analyst, "tag", rid[:8], "--json")["tags"] == {"status": "production"}
    assert [o["id"] for o in run_json(analyst, "log", "--json", "--where", 'tags.status == "production"')] == [rid]


def test_tags_record_the_site_of_init_site_and_gc_packs_them_there(tmp_path: Path) -> None:
    """`cmfgit init --site lab` names the site of every record this clone writes:
    runs (CLI and API) and tags alike, so gc never makes a pack/<hostname>/ folder."""
    import os

    root = make_repo(tmp_path / "r", site="lab")
    cmfgit(root, "log-run", "-s", "train", "-o", "out.txt", "--", "sh", "-c", "echo 1 > out.txt")
    (run_id,) = (r["id"] for r in run_json(root, "log", "--json"))
    with api.run(stage="api", repo=root):
        pass
    cmfgit(root, "tag", run_id[:12], "stage=prod")
    api.tag(run_id, {"owner": "ana"}, repo=root)
    cmfgit(root, "tag", "out.txt", "checked=yes")
    records = [r.load() for r in Store(root / ".cmf/objects").iter_records()]
    annotations = [r for r in records if r["schema"].startswith("cmfgit/annotation")]
    assert len(annotations) == 3
    assert {a["site"] for a in annotations} == {"lab"}
    assert {r["site"] for r in records} == {"lab"}
    assert os.uname().nodename != "lab"
    cmfgit(root, "gc")
    packs = {p.relative_to(root / ".cmf/objects/pack").parts[0] for p in (root / ".cmf/objects/pack").rglob("*.yaml")}
    assert packs == {"lab"}
